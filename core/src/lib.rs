//! shomei-core: the code every Shomei phone runs (skeleton; see issue 2).
