//! The typed-code fallback's user code (RFC 8628 `user_code`, docs/protocol.md §4.6).
//!
//! When the phone's camera cannot read the EHR screen, the practitioner
//! types the eight-letter code shown next to the QR instead. The QR carries
//! a 128-bit secret; a typed code carries 34.6 bits, so the server budgets
//! the guesses and only [`UserCode::parse`] decides what a code is: one
//! strict normalization shared by phone and server, refusing anything that
//! is not a code (with the reason) before a request is sent or a database
//! is asked.
//!
//! The rules: case-insensitive; spaces and hyphens are ignored (ASCII,
//! their full-width forms and the dashes a Japanese keyboard produces, so
//! `ｂｃｄｆーｇｈｊｋ` typed with an IME is the same code); exactly eight
//! letters of [`ALPHABET`] remain. The alphabet is RFC 8628 §6.1's: twenty
//! consonants, no vowels (no words), no `Y`, and no digits, so the
//! confusable pairs `0`/`O`, `1`/`I`/`L`, `5`/`S`, `2`/`Z`, `8`/`B` cannot
//! arise from what the EHR shows — a digit or vowel typed is refused as
//! [`UserCodeError::InvalidCharacter`], never silently mapped to a letter.

/// The twenty letters a user code is made of (RFC 8628 §6.1).
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a code (8 × log2 20 = 34.6 bits).
pub const LETTERS: usize = 8;
/// Longest input looked at (letters plus generous separators); longer is refused unread.
pub const MAX_INPUT_CHARS: usize = 32;

/// Why a typed text is not a user code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserCodeError {
    /// Nothing but separators was typed.
    #[error("no code was typed")]
    Empty,
    /// More than [`MAX_INPUT_CHARS`] characters.
    #[error("the code is too long ({0} characters)")]
    TooLong(usize),
    /// A character that is neither a code letter nor a separator
    /// (a vowel, `Y`, a digit, punctuation, …). `position` counts characters of the input from 1.
    #[error("{character:?} (character {position}) is not in a code: codes use only the letters {}", std::str::from_utf8(ALPHABET).unwrap_or(""))]
    InvalidCharacter {
        /// The character as typed.
        character: char,
        /// 1-based position in the input.
        position: usize,
    },
    /// Not exactly [`LETTERS`] letters.
    #[error("a code has {LETTERS} letters, this has {0}")]
    WrongLength(usize),
}

/// A well-formed user code: eight letters of [`ALPHABET`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserCode([u8; LETTERS]);

impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A live code is a short-lived credential: keep it out of debug logs.
        f.write_str("UserCode(..)")
    }
}

/// A separator the user may type between letters (ignored).
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-'
            | '\u{3000}' // IDEOGRAPHIC SPACE
            | '\u{FF0D}' // FULLWIDTH HYPHEN-MINUS
            | '\u{2010}' // HYPHEN
            | '\u{2011}' // NON-BREAKING HYPHEN
            | '\u{2012}' // FIGURE DASH
            | '\u{2013}' // EN DASH
            | '\u{2212}' // MINUS SIGN
            | '\u{30FC}' // KATAKANA-HIRAGANA PROLONGED SOUND MARK (the IME's "-")
    )
}

/// Folds a full-width Latin letter (U+FF21–U+FF3A, U+FF41–U+FF5A) to ASCII.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            char::from_u32(c as u32 - 0xFF21 + 0x41).unwrap_or(c)
        }
        _ => c,
    }
}

impl UserCode {
    /// Normalizes and checks what the user typed (module docs for the rules).
    pub fn parse(typed: &str) -> Result<UserCode, UserCodeError> {
        let n = typed.chars().count();
        if n > MAX_INPUT_CHARS {
            return Err(UserCodeError::TooLong(n));
        }
        let mut letters = Vec::with_capacity(LETTERS);
        for (i, c) in typed.chars().enumerate() {
            if is_separator(c) {
                continue;
            }
            let up = fold_width(c).to_ascii_uppercase();
            if !up.is_ascii() || !ALPHABET.contains(&(up as u8)) {
                return Err(UserCodeError::InvalidCharacter {
                    character: c,
                    position: i + 1,
                });
            }
            letters.push(up as u8);
        }
        match letters.len() {
            0 => Err(UserCodeError::Empty),
            LETTERS => Ok(UserCode(letters.try_into().expect("length checked"))),
            other => Err(UserCodeError::WrongLength(other)),
        }
    }

    /// A code from eight alphabet indices (0..20), as a server draws it.
    pub fn from_indices(idx: [u8; LETTERS]) -> Option<UserCode> {
        let mut out = [0u8; LETTERS];
        for (o, i) in out.iter_mut().zip(idx) {
            *o = *ALPHABET.get(i as usize)?;
        }
        Some(UserCode(out))
    }

    /// The eight letters without separator (what the server's keyed hash covers).
    pub fn letters(&self) -> &[u8; LETTERS] {
        &self.0
    }

    /// The canonical spelling the EHR shows and the phone sends: `BCDF-GHJK`.
    pub fn canonical(&self) -> String {
        let s = std::str::from_utf8(&self.0).expect("alphabet is ASCII");
        format!("{}-{}", &s[..4], &s[4..])
    }
}

impl std::fmt::Display for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl std::str::FromStr for UserCode {
    type Err = UserCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserCode::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../../docs/protocol.md");

    /// The `user-code-normalization` block of docs/protocol.md §4.6: one
    /// `"typed" -> CANONICAL` or `"typed" -> error: <kind>` per line.
    #[test]
    fn protocol_md_normalization_vectors_match_the_code() {
        let block = DOC
            .split("```text user-code-normalization\n")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("docs/protocol.md has a user-code-normalization block");
        let mut checked = 0;
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let (typed, want) = line
                .rsplit_once(" -> ")
                .expect("lines are \"typed\" -> result");
            let typed: String = serde_json::from_str(typed.trim()).expect("typed is a JSON string");
            let got = match UserCode::parse(&typed) {
                Ok(c) => c.canonical(),
                Err(UserCodeError::Empty) => "error: empty".into(),
                Err(UserCodeError::TooLong(_)) => "error: too_long".into(),
                Err(UserCodeError::InvalidCharacter { position, .. }) => {
                    format!("error: invalid_character at {position}")
                }
                Err(UserCodeError::WrongLength(n)) => format!("error: wrong_length {n}"),
            };
            assert_eq!(got, want.trim(), "{typed:?}");
            checked += 1;
        }
        assert!(checked >= 12, "too few normalization vectors: {checked}");
    }

    #[test]
    fn every_spelling_of_a_code_is_the_same_code() {
        let want = UserCode::parse("BCDF-GHJK").unwrap();
        for typed in [
            "bcdfghjk",
            "BcDf GhJk",
            " B-C-D-F-G-H-J-K ",
            "ＢＣＤＦ－ＧＨＪＫ",
            "ｂｃｄｆーｇｈｊｋ",
            "BCDF\u{3000}GHJK",
        ] {
            assert_eq!(UserCode::parse(typed).unwrap(), want, "{typed:?}");
        }
        assert_eq!(want.canonical(), "BCDF-GHJK");
        assert_eq!(want.letters(), b"BCDFGHJK");
    }

    #[test]
    fn confusables_and_foreign_characters_are_refused_with_their_position() {
        for (typed, pos) in [
            ("BCDF-GHJ0", 9),
            ("OCDF-GHJK", 1),
            ("BCDF-GH1K", 8),
            ("BCDY-GHJK", 4),
            ("BCDF_GHJK", 5),
            ("BCDF-GHJÄ", 9),
            ("BCDF\tGHJK", 5),
        ] {
            match UserCode::parse(typed) {
                Err(UserCodeError::InvalidCharacter { position, .. }) => {
                    assert_eq!(position, pos, "{typed:?}")
                }
                other => panic!("{typed:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn lengths_other_than_eight_letters_are_refused() {
        assert_eq!(UserCode::parse(""), Err(UserCodeError::Empty));
        assert_eq!(UserCode::parse(" - "), Err(UserCodeError::Empty));
        assert_eq!(
            UserCode::parse("BCDF-GHJ"),
            Err(UserCodeError::WrongLength(7))
        );
        assert_eq!(
            UserCode::parse("BCDF-GHJKL"),
            Err(UserCodeError::WrongLength(9))
        );
        assert_eq!(
            UserCode::parse(&"B".repeat(33)),
            Err(UserCodeError::TooLong(33))
        );
    }

    #[test]
    fn debug_output_does_not_show_the_code() {
        let c = UserCode::parse("BCDF-GHJK").unwrap();
        assert!(!format!("{c:?}").contains("BCDF"));
    }

    #[test]
    fn indices_map_onto_the_alphabet() {
        assert_eq!(
            UserCode::from_indices([0, 1, 2, 3, 4, 5, 6, 7])
                .unwrap()
                .canonical(),
            "BCDF-GHJK"
        );
        assert_eq!(
            UserCode::from_indices([19; 8]).unwrap().canonical(),
            "ZZZZ-ZZZZ"
        );
        assert!(UserCode::from_indices([20, 0, 0, 0, 0, 0, 0, 0]).is_none());
    }
}
