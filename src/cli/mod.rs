//! The `botmaker` command line (being built).
