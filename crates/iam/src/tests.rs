//! Store-backed tests of IAM and STS.
