//! Facade tests.
