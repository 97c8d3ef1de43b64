//! Root tests: the real keepalived in throw-away labs.
