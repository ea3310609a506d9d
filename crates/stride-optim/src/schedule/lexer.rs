//! Tokens of the schedule grammar, with their byte spans for error carets.

use super::error::ScheduleError;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok {
    /// A name or word: ASCII letter or `_`, then letters, digits, `_`.
    Ident,
    /// A decimal number, optionally signed and with an exponent.
    Number(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Star,
    /// The end of the spec (offset = length, length 0).
    End,
}

/// A token and where it is in the spec, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub offset: usize,
    pub len: usize,
}

impl Token {
    /// The token's text in `spec`.
    pub fn text(self, spec: &str) -> &str {
        spec.get(self.offset..self.offset + self.len).unwrap_or("")
    }
}

/// Splits `spec` into tokens, ending with [`Tok::End`].
pub(crate) fn tokenize(spec: &str) -> Result<Vec<Token>, ScheduleError> {
    let bytes = spec.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let single = match b {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b',' => Some(Tok::Comma),
            b'=' => Some(Tok::Eq),
            b'*' => Some(Tok::Star),
            _ => None,
        };
        if let Some(kind) = single {
            tokens.push(Token {
                kind,
                offset: i,
                len: 1,
            });
            i += 1;
        } else if b.is_ascii_whitespace() {
            i += 1;
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let len = run(&bytes[i..], |c| c.is_ascii_alphanumeric() || c == b'_');
            tokens.push(Token {
                kind: Tok::Ident,
                offset: i,
                len,
            });
            i += len;
        } else if starts_number(&bytes[i..]) {
            let token = number(spec, i)?;
            i += token.len;
            tokens.push(token);
        } else {
            // Report the whole character, not one byte of it.
            let c = spec[i..].chars().next().unwrap_or('?');
            return Err(ScheduleError::Parse {
                spec: spec.to_string(),
                offset: i,
                len: c.len_utf8(),
                message: format!(
                    "unexpected character `{c}`; expected a name, a number, or one of ( ) [ ] , = *{}",
                    if c == ';' { " (lists are written [30, 80])" } else { "" }
                ),
            });
        }
    }
    tokens.push(Token {
        kind: Tok::End,
        offset: spec.len(),
        len: 0,
    });
    Ok(tokens)
}

/// Length of the prefix of `bytes` whose bytes satisfy `ok`.
fn run(bytes: &[u8], ok: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|&&c| ok(c)).count()
}

/// Whether a number starts here: a digit, `.5`, or a sign before either.
fn starts_number(bytes: &[u8]) -> bool {
    let unsigned = |b: &[u8]| match b {
        [d, ..] if d.is_ascii_digit() => true,
        [b'.', d, ..] => d.is_ascii_digit(),
        _ => false,
    };
    match bytes {
        [b'+' | b'-', rest @ ..] => unsigned(rest),
        _ => unsigned(bytes),
    }
}

/// Scans `[+-] digits [. digits] [(e|E) [+-] digits]` at `start`.
fn number(spec: &str, start: usize) -> Result<Token, ScheduleError> {
    let bytes = &spec.as_bytes()[start..];
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    i += run(&bytes[i..], |c| c.is_ascii_digit());
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        i += run(&bytes[i..], |c| c.is_ascii_digit());
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(i + 1), Some(b'+' | b'-')));
        let digits = run(&bytes[i + 1 + sign..], |c| c.is_ascii_digit());
        if digits > 0 {
            i += 1 + sign + digits;
        }
    }
    // `1e-3x`, `2.5.1`, `10_000`: one bad token, not a number followed by a name.
    let tail = run(&bytes[i..], |c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
    let text = &spec[start..start + i];
    match text.parse::<f64>() {
        Ok(v) if tail == 0 => Ok(Token {
            kind: Tok::Number(v),
            offset: start,
            len: i,
        }),
        _ => Err(ScheduleError::Parse {
            spec: spec.to_string(),
            offset: start,
            len: i + tail,
            message: format!(
                "invalid number `{}`; expected digits with an optional `.` and exponent, like 0.5 or 1e-3",
                &spec[start..start + i + tail]
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(spec: &str) -> Vec<Tok> {
        tokenize(spec).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens_of_a_spec() {
        use Tok::*;
        assert_eq!(
            kinds("step(gamma=0.5, every=1e3) * exp(-.5)"),
            vec![
                Ident,
                LParen,
                Ident,
                Eq,
                Number(0.5),
                Comma,
                Ident,
                Eq,
                Number(1000.0),
                RParen,
                Star,
                Ident,
                LParen,
                Number(-0.5),
                RParen,
                End
            ]
        );
        assert_eq!(
            kinds("at=[30,80]")[2..7],
            [LBracket, Number(30.0), Comma, Number(80.0), RBracket]
        );
        assert_eq!(kinds("triangular2 exp_range"), vec![Ident, Ident, End]);
    }

    #[test]
    fn spans_are_bytes() {
        let spec = "  cosine( 100 )";
        let t = tokenize(spec).unwrap();
        assert_eq!(t[0].text(spec), "cosine");
        assert_eq!((t[2].offset, t[2].len), (10, 3));
        assert_eq!(t.last().unwrap().offset, spec.len());
    }

    #[test]
    fn bad_numbers_and_characters() {
        let e = tokenize("step(1e-3x)").unwrap_err();
        assert!(matches!(&e, ScheduleError::Parse { offset: 5, len: 5, .. }), "{e:?}");
        assert!(e.to_string().contains("invalid number `1e-3x`"));
        let e = tokenize("warmup(5) → cosine").unwrap_err();
        assert!(matches!(&e, ScheduleError::Parse { offset: 10, len: 3, .. }), "{e:?}");
        assert!(tokenize("1.2.3").is_err());
        assert!(tokenize("-").is_err());
        assert!(tokenize("1e").is_err());
    }
}
