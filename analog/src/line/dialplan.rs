//! The FXS dial plan: when collected digits form a route.
//!
//! - `#` (the terminator) ends dialling at once: the digits before it are an outside number
//!   (after the outside prefix), an extension (exact match), or any other number.
//! - The outside prefix (`0`) as the first digit selects an outside line; the rest is
//!   collected until the terminator, the inter-digit timeout or `max_digits`.
//! - Otherwise an exact extension match routes at once, unless a longer extension starts
//!   with the same digits (then the timeout or the terminator decides).
//! - Digits that are neither wait for the terminator or the timeout and become a number.
//! - Hotline: no digits at all; the port routes on off-hook.

use heapless::{String, Vec};

use super::{Digits, MAX_DIGITS, Route};

/// Longest extension number.
pub const MAX_EXTENSION: usize = 8;
/// Most extensions in one plan.
pub const MAX_EXTENSIONS: usize = 32;

/// A dial plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    /// Extension numbers.
    pub extensions: Vec<String<MAX_EXTENSION>, MAX_EXTENSIONS>,
    /// First digit that selects an outside line (`Some('0')`).
    pub outside_prefix: Option<char>,
    /// Digit that ends dialling (`Some('#')`).
    pub terminator: Option<char>,
    /// Route at this many digits even without the terminator.
    pub max_digits: usize,
    /// Route on off-hook without digits.
    pub hotline: bool,
}

impl Default for DialPlan {
    fn default() -> Self {
        Self {
            extensions: Vec::new(),
            outside_prefix: Some('0'),
            terminator: Some('#'),
            max_digits: 20,
            hotline: false,
        }
    }
}

/// What the plan says about the digits so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Route now.
    Route(Route),
    /// Wait for more digits.
    NeedMore,
    /// Nothing routable (only the terminator, or only the outside prefix).
    Invalid,
}

fn digits_of(s: &str) -> Digits {
    let mut d = Digits::new();
    for c in s.chars().take(MAX_DIGITS) {
        let _ = d.push(c);
    }
    d
}

impl DialPlan {
    /// A plan with these extensions and the defaults otherwise.
    ///
    /// Extensions longer than [`MAX_EXTENSION`] or beyond [`MAX_EXTENSIONS`] are refused
    /// with `Err` naming the first offender.
    pub fn with_extensions<'a>(
        extensions: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, &'a str> {
        let mut plan = Self::default();
        for e in extensions {
            let s: String<MAX_EXTENSION> = String::try_from(e).map_err(|_| e)?;
            plan.extensions.push(s).map_err(|_| e)?;
        }
        Ok(plan)
    }

    fn is_extension(&self, d: &str) -> bool {
        self.extensions.iter().any(|e| e.as_str() == d)
    }

    fn longer_extension_starts_with(&self, d: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.len() > d.len() && e.starts_with(d))
    }

    fn complete(&self, d: &str) -> Decision {
        if d.is_empty() {
            return Decision::Invalid;
        }
        if let Some(p) = self.outside_prefix
            && let Some(rest) = d.strip_prefix(p)
            && !self.is_extension(d)
        {
            return if rest.is_empty() {
                Decision::Invalid
            } else {
                Decision::Route(Route::Outside(digits_of(rest)))
            };
        }
        if self.is_extension(d) {
            Decision::Route(Route::Extension(digits_of(d)))
        } else {
            Decision::Route(Route::Number(digits_of(d)))
        }
    }

    /// Checks digits after each new one (`timed_out` when the inter-digit timer expired).
    #[must_use]
    pub fn check(&self, digits: &str, timed_out: bool) -> Decision {
        if let Some(t) = self.terminator
            && let Some(body) = digits.strip_suffix(t)
        {
            return self.complete(body);
        }
        if timed_out || digits.chars().count() >= self.max_digits {
            return self.complete(digits);
        }
        let outside = self
            .outside_prefix
            .is_some_and(|p| digits.starts_with(p) && !self.is_extension(digits));
        if !outside && self.is_extension(digits) && !self.longer_extension_starts_with(digits) {
            return Decision::Route(Route::Extension(digits_of(digits)));
        }
        Decision::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> DialPlan {
        DialPlan::with_extensions(["100", "101", "20", "200"]).expect("valid")
    }

    fn ext(s: &str) -> Decision {
        Decision::Route(Route::Extension(digits_of(s)))
    }

    #[test]
    fn extensions_route_at_once_unless_ambiguous() {
        let p = plan();
        assert_eq!(p.check("1", false), Decision::NeedMore);
        assert_eq!(p.check("10", false), Decision::NeedMore);
        assert_eq!(p.check("101", false), ext("101"));
        // "20" is an extension but "200" starts with it: wait.
        assert_eq!(p.check("20", false), Decision::NeedMore);
        assert_eq!(p.check("20", true), ext("20"));
        assert_eq!(p.check("20#", false), ext("20"));
        assert_eq!(p.check("200", false), ext("200"));
    }

    #[test]
    fn outside_line_and_numbers() {
        let p = plan();
        assert_eq!(p.check("0", false), Decision::NeedMore);
        assert_eq!(p.check("0555", false), Decision::NeedMore);
        assert_eq!(
            p.check("0555123#", false),
            Decision::Route(Route::Outside(digits_of("555123")))
        );
        assert_eq!(
            p.check("0555", true),
            Decision::Route(Route::Outside(digits_of("555")))
        );
        assert_eq!(p.check("0", true), Decision::Invalid);
        assert_eq!(p.check("#", false), Decision::Invalid);
        assert_eq!(
            p.check("555#", false),
            Decision::Route(Route::Number(digits_of("555")))
        );
        assert_eq!(p.check("7", false), Decision::NeedMore);
        let long = "12345678901234567890";
        assert_eq!(
            p.check(long, false),
            Decision::Route(Route::Number(digits_of(long)))
        );
    }

    #[test]
    fn bad_extensions_are_refused() {
        assert_eq!(DialPlan::with_extensions(["123456789"]), Err("123456789"));
    }
}
