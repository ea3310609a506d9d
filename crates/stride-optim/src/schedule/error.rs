/// Errors of schedule construction and of the schedule grammar.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A parameter outside its valid range.
    #[error("invalid {name} = {value}: {message}")]
    Config {
        /// The parameter, spelled as the struct field.
        name: &'static str,
        /// Its value (counts are converted to f64).
        value: f64,
        /// What is expected.
        message: &'static str,
    },
    /// A schedule spec that does not parse; the message ends with the spec and
    /// a caret line under the offending token.
    #[error("{}", render_parse_error(spec, *offset, *len, message))]
    Parse {
        /// The whole spec as given.
        spec: String,
        /// Byte offset of the offending token in `spec`.
        offset: usize,
        /// Byte length of the offending token (0 at the end of the spec).
        len: usize,
        /// What was found and what was expected.
        message: String,
    },
}

/// Result alias of the schedule module.
pub type Result<T> = std::result::Result<T, ScheduleError>;

/// Checks `value` with `ok`, naming it in the error; non-finite values always fail.
pub(crate) fn check(name: &'static str, value: f64, ok: bool, message: &'static str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(ScheduleError::Config { name, value, message })
    }
}

/// Formats a parse error as
///
/// ```text
/// column 6: unknown schedule `cosin`; expected one of ...
///   cosin(100)
///   ^^^^^
/// ```
///
/// Columns count characters, not bytes, so the caret lines up under
/// non-ASCII specs too; control characters are shown as spaces for the same
/// reason.
fn render_parse_error(spec: &str, offset: usize, len: usize, message: &str) -> String {
    let offset = floor_char_boundary(spec, offset);
    let end = floor_char_boundary(spec, offset.saturating_add(len));
    let column = spec[..offset].chars().count() + 1;
    let shown: String = spec.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let carets = spec[offset..end].chars().count().max(1);
    format!(
        "invalid schedule at column {column}: {message}\n  {shown}\n  {}{}",
        " ".repeat(column - 1),
        "^".repeat(carets)
    )
}

/// The largest char boundary of `s` not after `i` (spans are byte offsets that
/// the parser keeps on boundaries; this only guards hand-made errors).
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_shows_column_and_carets() {
        let e = ScheduleError::Parse {
            spec: "cosin(100)".into(),
            offset: 0,
            len: 5,
            message: "unknown schedule `cosin`".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid schedule at column 1: unknown schedule `cosin`\n  cosin(100)\n  ^^^^^"
        );
    }

    #[test]
    fn caret_counts_characters_not_bytes() {
        let e = ScheduleError::Parse {
            spec: "é x".into(),
            offset: 3,
            len: 1,
            message: "m".into(),
        };
        assert!(e.to_string().ends_with("\n  é x\n    ^"), "{e}");
    }

    #[test]
    fn end_of_input_gets_one_caret() {
        let e = ScheduleError::Parse {
            spec: "step(".into(),
            offset: 5,
            len: 0,
            message: "m".into(),
        };
        assert!(e.to_string().ends_with("\n  step(\n       ^"), "{e}");
    }
}
