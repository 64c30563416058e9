//! Paging of the operator's lists: every list command takes `--limit N`
//! and `--after CURSOR`, asks the tower for one page
//! (`ApiCall::Page`), prints its rows on stdout and then, on stderr, what
//! the page leaves out — `N more: --after X (T in all)`, or `no servers`
//! for an empty list; with `--json`, one object
//! `{"next":…,"more":…,"total":…}` (`next` null on the last page). Rows
//! alone on stdout: a script's `| wc -l` or `| jq` sees only them.

use vigie_client::calls::Paged;
use vigie_client::Call;
use vigie_wire::page::{PageAsk, PageInfo, DEFAULT_PAGE, MAX_PAGE};

use super::conn::Tower;
use super::out::Format;

/// `--limit` and `--after` of a list command.
#[derive(Debug, Clone, clap::Args)]
pub struct PageArgs {
    /// Most rows to show, one page (at most 1000); the rest is counted,
    /// with the cursor to go on from.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PAGE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    pub limit: u32,
    /// Go on after this cursor: the `--after X` the previous page ended with.
    #[arg(long, value_name = "CURSOR", allow_hyphen_values = true)]
    pub after: Option<String>,
}

impl PageArgs {
    pub fn ask(&self) -> PageAsk {
        PageAsk {
            limit: self.limit,
            after: self.after.clone(),
            before: None,
            newest: false,
        }
    }
}

/// One page of a list call: the list's own answer, and what it leaves out.
pub fn call<C: Call>(
    tower: &mut Tower,
    call: C,
    page: PageAsk,
) -> anyhow::Result<(C::Answer, PageInfo)> {
    tower.ask(Paged { call, page })
}

/// What follows a page's rows, on stderr: `things` names the list's
/// items ("servers") for an empty one.
pub fn footer(page: &PageInfo, format: Format, things: &str) -> anyhow::Result<()> {
    if format == Format::Json {
        let o = serde_json::json!({ "next": page.next, "more": page.more, "total": page.total });
        eprintln!("{}", super::out::json_line(&o)?);
        return Ok(());
    }
    if page.total == 0 {
        eprintln!("no {things}");
        return Ok(());
    }
    if let Some(next) = &page.next {
        let flag = if page.back { "--before" } else { "--after" };
        eprintln!(
            "{} more: {flag} {} ({} in all)",
            thousands(page.more),
            super::escape::field(next),
            thousands(page.total)
        );
    }
    Ok(())
}

fn thousands(n: u64) -> String {
    vigie_catalog::thousands(usize::try_from(n).unwrap_or(usize::MAX))
}
