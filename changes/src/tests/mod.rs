mod change_files;
mod examples;
mod selectors;
