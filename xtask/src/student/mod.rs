//! The student's loop around the grader: how far a skeleton is.

pub mod progress;
