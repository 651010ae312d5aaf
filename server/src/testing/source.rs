//! Rust source text as the tests that read the server's own source need
//! it: the OpenAPI test reads the router's routes from `src/api/mod.rs`,
//! the layering test reads which module uses which from every file. Both
//! must not be fooled by comments, and the layering test not by string
//! literals either, so the lexing of comments and literals is here once.

/// What [`strip_comments`] does with string and char literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literals {
    /// Copied as they are (a route path is a literal).
    Keep,
    /// Emptied to `""` (a path written in a literal is no reference).
    Blank,
}

/// `src` with `//` and `/* */` comments (nested too) replaced by spaces;
/// string literals (also raw ones) and char literals kept or emptied.
pub fn strip_comments(src: &str, literals: Literals) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = literal_end(b, i) {
            match literals {
                Literals::Keep => out.push_str(&src[i..end]),
                Literals::Blank => out.push_str("\"\""),
            }
            i = end;
            continue;
        }
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            _ => {
                let c = src[i..].chars().next().expect("in bounds");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// Whether `c` can be part of an identifier.
pub fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// If a string literal (`"..."`, `r#"..."#`, `br"..."`) or a char literal
/// (`'x'`, `'\n'`) starts at `i`, the index just past it. (A lifetime such
/// as `'a` is no literal, nor is a raw identifier such as `r#type`.)
pub fn literal_end(b: &[u8], i: usize) -> Option<usize> {
    match b[i] {
        b'"' => Some(string_end(b, i)),
        b'r' if starts_token(b, i) || (i > 0 && b[i - 1] == b'b' && starts_token(b, i - 1)) => {
            raw_string_end(b, i)
        }
        b'\'' if b.get(i + 1) == Some(&b'\\') => {
            // Skip the escaped character, then find the closing quote.
            let close = b.get(i + 3..)?.iter().position(|&c| c == b'\'')?;
            Some(i + 3 + close + 1)
        }
        b'\'' => {
            let len = match *b.get(i + 1)? {
                c if c < 0x80 => 1,
                c if c < 0xE0 => 2,
                c if c < 0xF0 => 3,
                _ => 4,
            };
            let after = i + 1 + len;
            (b.get(after) == Some(&b'\'')).then_some(after + 1)
        }
        _ => None,
    }
}

/// No identifier character right before `i`.
fn starts_token(b: &[u8], i: usize) -> bool {
    i == 0 || !is_ident_byte(b[i - 1])
}

/// The end of `r"..."` / `r#"..."#` starting at the `r` at `i`, if it is one.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    let open = i + 1 + hashes;
    if b.get(open) != Some(&b'"') {
        return None;
    }
    let mut j = open + 1;
    while j < b.len() {
        if b[j] == b'"'
            && b[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == b'#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    panic!("unterminated raw string literal at byte {i}");
}

/// The index just past the string literal that starts at `start` (a `"`).
pub fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    panic!("unterminated string literal at byte {start}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_go_and_literals_stay_or_empty() {
        let src = "let a = \"// no comment\"; // comment\n\
                   let b = r#\"a \"quoted\" /* x */\"#; /* block /* nested */ */ let c = 'x';\n\
                   fn f<'a>(x: &'a str) {} let r#type = br\"\\\";";
        let kept = strip_comments(src, Literals::Keep);
        assert_eq!(
            kept,
            "let a = \"// no comment\"; \n\
             let b = r#\"a \"quoted\" /* x */\"#;   let c = 'x';\n\
             fn f<'a>(x: &'a str) {} let r#type = br\"\\\";"
        );
        let blanked = strip_comments(src, Literals::Blank);
        assert_eq!(
            blanked,
            "let a = \"\"; \n\
             let b = \"\";   let c = \"\";\n\
             fn f<'a>(x: &'a str) {} let r#type = b\"\";"
        );
    }
}
