//! shomei-server (skeleton; see issue 3).
