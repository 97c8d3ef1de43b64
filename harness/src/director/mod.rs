//! director
