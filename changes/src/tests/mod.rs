//! Tests of change files, selectors and the shipped examples.

mod change_files;
mod examples;
mod selectors;
