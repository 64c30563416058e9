//! Paging of every list an operator asks for: a list call is wrapped in
//! [`crate::tower::ApiCall::Page`] with a [`PageAsk`], and the answer in
//! [`crate::tower::ApiAnswer::Page`] says how many there are in all and
//! where the next page starts. No list is cut silently: what is not in a
//! page is counted, with the cursor to reach it.

use serde::{Deserialize, Serialize};

/// Most items one page holds, whatever is asked (an answer is one frame).
pub const MAX_PAGE: u32 = 1_000;
/// The page the CLI asks for when told nothing.
pub const DEFAULT_PAGE: u32 = 200;

/// Which page of a list. Items are in the list's key order (a name, a
/// number, an address); `after` pages forward from a cursor, `before`
/// back; with neither, the first page — or the last when `newest` (the
/// latest changes, the audit's newest records).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageAsk {
    pub limit: u32,
    pub after: Option<String>,
    pub before: Option<String>,
    pub newest: bool,
}

/// What a page leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// Items of the whole list (its filters applied).
    pub total: u64,
    /// Items beyond this page, in its direction.
    pub more: u64,
    /// The cursor of the next page (`None` when nothing is left): give it
    /// to `after`, or to `before` when `back`.
    pub next: Option<String>,
    /// The page was taken backwards (`before`, or `newest`).
    pub back: bool,
}
