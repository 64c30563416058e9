//! The page frame every console page shares, and small shared pieces.
//! maud escapes every interpolated string: a host's label or a step's
//! output is text, never markup.

use maud::{html, Markup, DOCTYPE};

use crate::auth::Signed;

/// A whole page for `who`.
pub fn page(title: &str, who: Option<&Signed>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Vigie" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header {
                    strong { "Vigie" }
                    @if who.is_some() {
                        a href="/" { "Fleet" }
                        a href="/changes" { "Changes" }
                        a href="/deployments" { "Deployments" }
                        a href="/servers" { "Servers" }
                        a href="/pools" { "IP pools" }
                        a href="/audit" { "Audit" }
                        a href="/operators" { "Operators" }
                        a href="/tokens" { "Tokens" }
                    }
                    @if let Some(s) = who {
                        span.who { (s.operator.name) " @ " (s.operator.tenant) }
                        (action("/logout", &s.csrf, "Sign out"))
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                script src="/assets/live.js" {}
            }
        }
    }
}

/// A host's labels as tags.
pub fn labels(l: &std::collections::BTreeMap<String, String>) -> Markup {
    html! {
        @for (k, v) in l {
            span.label { (k) "=" (v) }
        }
    }
}

/// A form that acts: POST with the session's CSRF token.
pub fn action(path: &str, csrf: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(path) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (label) }
        }
    }
}
