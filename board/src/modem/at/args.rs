//! Splitting the comma-separated argument list of an AT information line.
//!
//! `+CLCC: 1,1,4,0,0,"+4912,3",145` has quoted strings that may contain commas, empty fields
//! (`+CMGR: 0,,23`) and bare tokens. This module turns such a list into [`Arg`]s and offers
//! typed accessors whose errors name the field, so the URC and response parsers stay short and
//! never index out of bounds.

use std::fmt;

/// One argument of an AT line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Nothing between two commas.
    Empty,
    /// A token without quotes, trimmed.
    Bare(String),
    /// A double-quoted string, quotes removed (no escape processing: AT has none in practice).
    Quoted(String),
}

impl Arg {
    /// The text of the argument (empty for [`Arg::Empty`]).
    pub fn text(&self) -> &str {
        match self {
            Arg::Empty => "",
            Arg::Bare(s) | Arg::Quoted(s) => s,
        }
    }

    /// The text, or `None` when the field is empty (or an empty quoted string).
    pub fn non_empty(&self) -> Option<&str> {
        let t = self.text();
        if t.is_empty() { None } else { Some(t) }
    }
}

/// Why an argument could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// Which field (name used in the error message).
    pub field: &'static str,
    /// What was wrong.
    pub problem: String,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.problem)
    }
}

/// Splits `s` at top-level commas. An unterminated quote takes the rest of the line.
pub fn split_args(s: &str) -> Vec<Arg> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        // Skip leading spaces of the field.
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        match chars.peek() {
            None => {
                out.push(Arg::Empty);
                break;
            }
            Some('"') => {
                chars.next();
                let mut v = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    v.push(c);
                }
                out.push(Arg::Quoted(v));
                // Anything after the closing quote up to the comma is dropped.
                let mut ended = true;
                for c in chars.by_ref() {
                    if c == ',' {
                        ended = false;
                        break;
                    }
                }
                if ended {
                    break;
                }
            }
            Some(_) => {
                let mut v = String::new();
                let mut ended = true;
                for c in chars.by_ref() {
                    if c == ',' {
                        ended = false;
                        break;
                    }
                    v.push(c);
                }
                let t = v.trim();
                out.push(if t.is_empty() {
                    Arg::Empty
                } else {
                    Arg::Bare(t.to_owned())
                });
                if ended {
                    break;
                }
            }
        }
    }
    // `""` alone yields one Empty; a line with nothing yields [Empty] too, which callers treat
    // as "no arguments" through the accessors.
    out
}

/// Typed, bounds-checked access to an argument list.
#[derive(Debug, Clone)]
pub struct Args {
    items: Vec<Arg>,
}

impl Args {
    /// Parses the argument list `s` (the part after `NAME:`).
    pub fn parse(s: &str) -> Self {
        Self {
            items: split_args(s),
        }
    }

    /// Number of fields (an empty line counts as one empty field).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no fields at all (never, by construction; kept for clippy).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The raw field `i`, if present.
    pub fn get(&self, i: usize) -> Option<&Arg> {
        self.items.get(i)
    }

    /// Field `i` as text; missing fields are an error.
    pub fn text(&self, i: usize, field: &'static str) -> Result<&str, ArgError> {
        self.items.get(i).map(Arg::text).ok_or_else(|| ArgError {
            field,
            problem: format!("missing (only {} fields)", self.items.len()),
        })
    }

    /// Field `i` as non-empty text, or `None` when missing or empty.
    pub fn opt_text(&self, i: usize) -> Option<&str> {
        self.items.get(i).and_then(Arg::non_empty)
    }

    /// Field `i` as an integer of type `T`.
    pub fn int<T: std::str::FromStr>(&self, i: usize, field: &'static str) -> Result<T, ArgError> {
        let t = self.text(i, field)?;
        t.trim().parse::<T>().map_err(|_| ArgError {
            field,
            problem: format!("`{t}` is not a valid number"),
        })
    }

    /// Field `i` as an integer, `None` when missing or empty, error when present but invalid.
    pub fn opt_int<T: std::str::FromStr>(
        &self,
        i: usize,
        field: &'static str,
    ) -> Result<Option<T>, ArgError> {
        match self.opt_text(i) {
            None => Ok(None),
            Some(t) => t.trim().parse::<T>().map(Some).map_err(|_| ArgError {
                field,
                problem: format!("`{t}` is not a valid number"),
            }),
        }
    }

    /// Field `i` as a hexadecimal integer (LAC / cell id), `None` when missing or empty.
    pub fn opt_hex(&self, i: usize, field: &'static str) -> Result<Option<u32>, ArgError> {
        match self.opt_text(i) {
            None => Ok(None),
            Some(t) => u32::from_str_radix(t.trim(), 16)
                .map(Some)
                .map_err(|_| ArgError {
                    field,
                    problem: format!("`{t}` is not a hexadecimal number"),
                }),
        }
    }
}

/// Splits an AT line `+NAME: args` / `^NAME:args` into `("+NAME", "args")`. Other lines
/// (`RING`, `VOICE CALL: BEGIN`) come back whole as `(line, "")`.
pub fn split_name(line: &str) -> (&str, &str) {
    if (line.starts_with('+') || line.starts_with('^'))
        && let Some((name, rest)) = line.split_once(':')
    {
        return (name.trim(), rest.trim_start());
    }
    (line, "")
}

/// True when `s` is a non-empty string of hexadecimal digits (a PDU line).
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_commas_and_empty_fields() {
        let a = split_args(r#"1,1,4,0,0,"+49,12",145"#);
        assert_eq!(a.len(), 7);
        assert_eq!(a[5], Arg::Quoted("+49,12".into()));
        assert_eq!(
            split_args("0,,23"),
            vec![Arg::Bare("0".into()), Arg::Empty, Arg::Bare("23".into())]
        );
        assert_eq!(split_args(""), vec![Arg::Empty]);
        assert_eq!(
            split_args(r#""unterminated"#),
            vec![Arg::Quoted("unterminated".into())]
        );
        assert_eq!(split_args("1,"), vec![Arg::Bare("1".into()), Arg::Empty]);
    }

    #[test]
    fn typed_access_names_the_field() {
        let a = Args::parse("x,5");
        let e = a.int::<u8>(0, "index").unwrap_err();
        assert_eq!(e.field, "index");
        assert_eq!(a.int::<u8>(1, "n"), Ok(5));
        assert!(a.int::<u8>(2, "missing").is_err());
        assert_eq!(a.opt_int::<u8>(2, "missing"), Ok(None));
        assert_eq!(Args::parse(r#""4CA""#).opt_hex(0, "lac"), Ok(Some(0x4CA)));
    }

    #[test]
    fn names() {
        assert_eq!(split_name("+CMTI: \"SM\",3"), ("+CMTI", "\"SM\",3"));
        assert_eq!(split_name("RING"), ("RING", ""));
        assert_eq!(split_name("VOICE CALL: BEGIN"), ("VOICE CALL: BEGIN", ""));
        assert_eq!(split_name("^CEND:1,0,104,16"), ("^CEND", "1,0,104,16"));
    }
}
