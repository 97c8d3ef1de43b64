//! realserver
