//! shomei-tests (skeleton; see issue 4).
