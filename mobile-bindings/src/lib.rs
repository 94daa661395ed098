//! shomei-mobile (skeleton; see issue 5).
