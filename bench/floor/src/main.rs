//! The floor of `bench/loadgen`'s cpu part: what receiving costs when a
//! receiver does no more than the kernel makes it do.
//!
//! ```text
//! floor [--io epoll|uring] URL TOKEN ROOM COUNT
//! ```
//!
//! Opens COUNT WebSocket connections to the Socket.IO server at URL (`ws://`
//! or `http://`, path `/socket.io/`), one at a time with blocking reads:
//! Engine.IO open, Socket.IO CONNECT with `{"token": TOKEN}`, `room:subscribe`
//! to ROOM with an ack. Prints `subscribed N failed M in S s`. Then one
//! thread receives on all of them, splits WebSocket frames, counts every
//! Socket.IO EVENT (`42…`) and answers Engine.IO pings (`2` → `3`): no
//! JSON, no tasks, no timers, no metrics. On SIGTERM it prints `received
//! N` and exits.
//!
//! - `--io epoll` (default): `epoll_wait` (level-triggered), one `read`
//!   per ready socket into a 4 KiB buffer, as an event loop like tokio's
//!   does. What it costs per message is what one read per message per
//!   socket costs on this machine (the kernel's TCP receive and the ACK
//!   it sends, `epoll`): the bound no client reading each message with a
//!   syscall of its own can beat.
//! - `--io uring`: io_uring with a multishot receive per socket into a
//!   ring of provided 1 KiB buffers, woken once per 32 completions or
//!   5 ms: no syscall per message, no readiness step. The cheapest
//!   receive mechanism Linux has; what is left is the TCP receive itself
//!   and its ACK.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// One subscribed connection: its socket and the bytes of a frame that
/// has not fully arrived (empty almost always).
struct Conn {
    stream: TcpStream,
    partial: Vec<u8>,
}

/// A complete WebSocket frame at the start of `buf`: (opcode, payload
/// range, frame length). Server frames are not masked; a masked one is
/// skipped over all the same.
fn frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (mut head, len): (usize, usize) = match b1 & 0x7f {
        126 => (
            4,
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
        ),
        127 => (
            10,
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?,
        ),
        n => (2, usize::from(n)),
    };
    if b1 & 0x80 != 0 {
        head += 4;
    }
    let end = head.checked_add(len)?;
    (buf.len() >= end).then_some((b0 & 0x0f, head..end, end))
}

/// A client frame (masked, as RFC 6455 requires of clients).
fn send(stream: &mut TcpStream, opcode: u8, payload: &[u8]) -> io::Result<()> {
    const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x8e];
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(0x80 | opcode);
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(
            &u16::try_from(payload.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    stream.write_all(&out)
}

/// Blocking: the next text frame's payload (pings answered on the way).
fn next_text(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    loop {
        if let Some((opcode, payload, end)) = frame(buf) {
            let payload = buf[payload].to_vec();
            buf.drain(..end);
            match opcode {
                1 if payload == b"2" => send(stream, 1, b"3")?,
                1 => return Ok(payload),
                8 => return Err(io::Error::other("closed during connect")),
                9 => send(stream, 10, &payload)?,
                _ => {}
            }
            continue;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed during connect"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Blocking: the next text frame starting with one of `prefixes`.
fn answer(stream: &mut TcpStream, buf: &mut Vec<u8>, prefixes: &[&[u8]]) -> io::Result<Vec<u8>> {
    loop {
        let text = next_text(stream, buf)?;
        if prefixes.iter().any(|p| text.starts_with(p)) {
            return Ok(text);
        }
    }
}

fn refused(text: &[u8]) -> io::Error {
    io::Error::other(String::from_utf8_lossy(text).into_owned())
}

fn connect(addr: &str, token: &str, room: &str) -> io::Result<Conn> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let head = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > 16 * 1024 {
            return Err(io::Error::other("no WebSocket upgrade"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other("upgrade refused"));
    }
    buf.drain(..head);
    if !next_text(&mut stream, &mut buf)?.starts_with(b"0") {
        return Err(io::Error::other("no Engine.IO open packet"));
    }
    send(
        &mut stream,
        1,
        format!("40{{\"token\":\"{token}\"}}").as_bytes(),
    )?;
    // The namespace's CONNECT answer (`40…`, or `44…`: refused), skipping
    // what else arrives.
    let connected = answer(&mut stream, &mut buf, &[b"40", b"44"])?;
    if connected.starts_with(b"44") {
        return Err(refused(&connected));
    }
    send(
        &mut stream,
        1,
        format!("420[\"room:subscribe\",{{\"roomId\":\"{room}\"}}]").as_bytes(),
    )?;
    let ack = answer(&mut stream, &mut buf, &[b"430"])?;
    if !ack.windows(14).any(|w| w == b"\"success\":true") {
        return Err(refused(&ack));
    }
    stream.set_read_timeout(None)?;
    stream.set_nonblocking(true)?;
    Ok(Conn {
        stream,
        partial: buf,
    })
}

/// Handles the complete frames of `bytes` (events counted into
/// `received`, pings answered), keeps an incomplete tail for the next
/// read; true when the server closed.
fn frames(conn: &mut Conn, bytes: &[u8], received: &mut u64) -> bool {
    let mut data = bytes;
    let joined;
    if !conn.partial.is_empty() {
        conn.partial.extend_from_slice(bytes);
        joined = std::mem::take(&mut conn.partial);
        data = &joined;
    }
    let mut at = 0;
    while let Some((opcode, payload, end)) = frame(&data[at..]) {
        let payload = &data[at + payload.start..at + payload.end];
        match opcode {
            1 if payload.starts_with(b"42") => *received += 1,
            // A pong that would block is dropped: the server's ping
            // timeout then says so (never seen with 6-byte pongs).
            1 if payload == b"2" => drop(send(&mut conn.stream, 1, b"3")),
            8 => return true,
            9 => drop(send(&mut conn.stream, 10, payload)),
            _ => {}
        }
        at += end;
    }
    if at < data.len() {
        conn.partial = data[at..].to_vec();
    }
    false
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let uring = match args.first().map(String::as_str) {
        Some("--io") if args.len() > 1 => {
            let io = args[1].clone();
            args.drain(..2);
            match io.as_str() {
                "epoll" => false,
                "uring" => true,
                _ => {
                    eprintln!("floor: --io wants epoll or uring, got {io}");
                    std::process::exit(2)
                }
            }
        }
        _ => false,
    };
    let [url, token, room, count] = args.as_slice() else {
        eprintln!("usage: floor [--io epoll|uring] URL TOKEN ROOM COUNT");
        std::process::exit(2);
    };
    let addr = url
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches('/');
    let count: usize = count.parse().unwrap_or_else(|_| {
        eprintln!("floor: COUNT must be a number, got {count}");
        std::process::exit(2)
    });
    // SAFETY: the handler only stores to an atomic.
    unsafe { libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t) };

    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(count);
    let mut failed = 0;
    for _ in 0..count {
        match connect(addr, token, room) {
            Ok(conn) => conns.push(conn),
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("floor: connect: {e}");
                }
            }
        }
    }
    println!(
        "subscribed {} failed {failed} in {:.1} s",
        conns.len(),
        t0.elapsed().as_secs_f64()
    );
    let _ = io::stdout().flush();

    let (received, closed) = if uring {
        uring_loop(&mut conns)
    } else {
        epoll_loop(&mut conns)
    };
    println!("received {received} closed {closed}");
}

/// Receives until SIGTERM or every socket closed: (events, closed).
fn epoll_loop(conns: &mut [Conn]) -> (u64, usize) {
    // SAFETY: plain epoll calls on descriptors this process owns; the
    // event array outlives every call that writes it.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epoll >= 0, "epoll_create1: {}", io::Error::last_os_error());
    for (i, conn) in conns.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        let rc = unsafe {
            libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, conn.stream.as_raw_fd(), &mut ev)
        };
        assert_eq!(rc, 0, "epoll_ctl: {}", io::Error::last_os_error());
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = [0u8; 4096];
    let mut received = 0u64;
    let mut open = conns.len();
    while !STOP.load(Ordering::Relaxed) && open > 0 {
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), 1024, 200) };
        for ev in &events[..usize::try_from(n).unwrap_or(0)] {
            let i = ev.u64 as usize;
            let conn = &mut conns[i];
            let closed = match conn.stream.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => frames(conn, &buf[..n], &mut received),
                Err(e) => {
                    e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted
                }
            };
            if closed {
                let fd = conn.stream.as_raw_fd();
                unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
                open -= 1;
            }
        }
    }
    (received, conns.len() - open)
}

/// Receives until SIGTERM or every socket closed, through io_uring:
/// (events, closed).
fn uring_loop(conns: &mut [Conn]) -> (u64, usize) {
    use io_uring::{IoUring, cqueue, opcode, types};
    use std::sync::atomic::AtomicU16;

    const BUF: usize = 1024;
    const ENTRIES: u16 = 4096;
    const GROUP: u16 = 0;
    let n = conns.len();
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize((2 * n as u32).next_power_of_two().max(8192))
        .build(4096)
        .expect("io_uring setup (kernel 6.1 or later, io_uring not disabled)");
    let fds: Vec<i32> = conns.iter().map(|c| c.stream.as_raw_fd()).collect();
    ring.submitter()
        .register_files(&fds)
        .expect("io_uring register_files");

    // The provided-buffer ring: ENTRIES descriptors (page-aligned, shared
    // with the kernel) of ENTRIES buffers; the kernel takes one per
    // completion, we give it back once its bytes are handled.
    let bufs = vec![0u8; usize::from(ENTRIES) * BUF];
    let ring_bytes = usize::from(ENTRIES) * std::mem::size_of::<types::BufRingEntry>();
    // SAFETY: an anonymous private mapping, used only through `entries`
    // and unmapped never (the process ends with the loop).
    let entries = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ring_bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(
        entries,
        libc::MAP_FAILED,
        "mmap: {}",
        io::Error::last_os_error()
    );
    let entries = entries.cast::<types::BufRingEntry>();
    // SAFETY: the mapping holds ENTRIES entries and lives as long as the ring.
    unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(entries as u64, ENTRIES, GROUP, 0)
            .expect("io_uring register_buf_ring");
    }
    // SAFETY: the tail lives in the first entry of the mapping.
    let tail_at = unsafe { &*types::BufRingEntry::tail(entries).cast::<AtomicU16>() };
    let mut tail: u16 = 0;
    let give_back = |bid: u16, tail: &mut u16| {
        // SAFETY: `tail & (ENTRIES - 1)` indexes the mapping; the kernel
        // reads the entry only after the tail is published.
        let entry = unsafe { &mut *entries.add(usize::from(*tail & (ENTRIES - 1))) };
        entry.set_addr(bufs.as_ptr() as u64 + u64::from(bid) * BUF as u64);
        entry.set_len(BUF as u32);
        entry.set_bid(bid);
        *tail = tail.wrapping_add(1);
    };
    for bid in 0..ENTRIES {
        give_back(bid, &mut tail);
    }
    tail_at.store(tail, Ordering::Release);

    let arm = |i: usize| {
        opcode::RecvMulti::new(types::Fixed(i as u32), GROUP)
            .build()
            .user_data(i as u64)
    };
    let mut to_arm: Vec<usize> = (0..n).collect();
    let mut closed = vec![false; n];
    let mut received = 0u64;
    let mut open = n;
    let wait = types::Timespec::new().nsec(5_000_000);
    while !STOP.load(Ordering::Relaxed) && open > 0 {
        while let Some(&i) = to_arm.last() {
            // SAFETY: the entry refers to registered files and the buffer
            // group, both alive for the ring's life.
            if unsafe { ring.submission().push(&arm(i)) }.is_err() {
                ring.submit().expect("io_uring submit");
                continue;
            }
            to_arm.pop();
        }
        let args = types::SubmitArgs::new().timespec(&wait);
        match ring.submitter().submit_with_args(32, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => panic!("io_uring_enter: {e}"),
        }
        let mut gave_back = false;
        for cqe in ring.completion() {
            let (i, res, flags) = (cqe.user_data() as usize, cqe.result(), cqe.flags());
            if res > 0 {
                let bid = cqueue::buffer_select(flags).expect("a buffer with every receive");
                let at = usize::from(bid) * BUF;
                let ended = frames(&mut conns[i], &bufs[at..at + res as usize], &mut received);
                give_back(bid, &mut tail);
                gave_back = true;
                if ended && !closed[i] {
                    closed[i] = true;
                    open -= 1;
                } else if !cqueue::more(flags) && !closed[i] {
                    to_arm.push(i);
                }
            } else if res == -libc::ENOBUFS {
                to_arm.push(i);
            } else if !closed[i] {
                // 0: the server closed; anything else: the socket failed.
                closed[i] = true;
                open -= 1;
            }
        }
        if gave_back {
            tail_at.store(tail, Ordering::Release);
        }
    }
    (received, closed.iter().filter(|c| **c).count())
}
