//! The latency histogram every tool shares: its bounds (so that histograms
//! of workers, shards and releases merge exactly) and its codec in a
//! report, the base64 (standard alphabet, padded) of the HDR V2 deflate
//! serialization: whole, so that nothing is lost on the way.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

/// Lowest value a latency histogram tells apart: 1 µs.
pub const HIST_LOW_US: u64 = 1;
/// Highest value a latency histogram tracks: 10 minutes in µs (larger
/// values are recorded as this).
pub const HIST_HIGH_US: u64 = 600_000_000;
/// Significant decimal digits of every latency histogram.
pub const HIST_SIGFIG: u8 = 3;

/// Why a histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram is not a valid HDR V2 serialization: {0}")]
    Hdr(String),
}

/// An empty latency histogram with the bounds every loadgen histogram uses
/// (so that they merge exactly).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG).expect("constant bounds")
}

/// Adds `other` into `into`; histograms with other bounds (e.g. from a
/// foreign report) make `into` grow instead of failing.
pub fn merge_histogram(into: &mut Histogram<u64>, other: &Histogram<u64>) {
    if into.add(other).is_err() {
        into.auto(true);
        into.add(other)
            .expect("an auto-resizing histogram takes any values");
    }
}

/// Base64 of the V2 deflate serialization of `h`.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads back a histogram written by [`encode_histogram`] (the `hdr` field
/// of a report), exactly.
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| DecodeError::Hdr(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips() {
        let mut h = new_histogram();
        for v in [1, 2, 3, 1000, 65_432, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 6);
    }

    #[test]
    fn a_literal_encoding_decodes() {
        // `hdr` of a report whose histogram holds 1, 1000 and 65432 µs, as
        // loadgen 0.1 wrote it: whatever the compressor's version, readers
        // must decode it exactly.
        let h = decode_histogram("HISTFAAAADt4nAEwAM//HISTEwAAAAgAAAAAAAAAAwAAAAAAAAABAAAAACPDRgA/8AAAAAAAAAACyw8CpWACbSYFkw==").unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!((h.min(), h.max()), (1, h.highest_equivalent(65_432)));
        assert_eq!(h.value_at_quantile(0.5), 1000);
        assert_eq!(h.count_at(1000), 1);
    }

    #[test]
    fn bad_histogram_is_an_error() {
        assert!(matches!(
            decode_histogram("!!!"),
            Err(DecodeError::Base64(_))
        ));
        assert!(matches!(
            decode_histogram("aGVsbG8="),
            Err(DecodeError::Hdr(_))
        ));
    }

    #[test]
    fn foreign_bounds_merge_by_growing() {
        let mut mine = new_histogram();
        mine.record(5).unwrap();
        let mut wide = Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, 2).unwrap();
        wide.record(HIST_HIGH_US * 100).unwrap();
        merge_histogram(&mut mine, &wide);
        assert_eq!(mine.len(), 2);
        assert!(mine.max() >= HIST_HIGH_US * 99);
    }
}
