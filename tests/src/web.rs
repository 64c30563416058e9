//! The web console from a test: its URL (once it told the referee), a
//! small HTTP client that never follows redirects and hands back every
//! status, and signing in with a one-time URL.

use std::time::Duration;

use vigie_client::ApiClient;
use vigie_wire::tower::{ApiAnswer, ApiCall};
use vigie_wire::web::{WebAnswer, WebCall};

use crate::Launcher;

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The console's base URL (`http://IP:PORT`), once the web daemon has
/// announced it to the referee (so `web login` can say it).
pub fn console(t: &Launcher) -> anyhow::Result<String> {
    let e = t.wait_from("web", "web_announced", 1, Duration::from_secs(30))?;
    e.str("url")
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("web_announced without url: {e:?}"))
}

/// A one-time sign-in URL for the operator `client` holds the key of.
pub fn login_url(client: &mut ApiClient) -> anyhow::Result<String> {
    match client.call(ApiCall::Web(WebCall::Login))? {
        ApiAnswer::Web(WebAnswer::Issued {
            secret,
            url: Some(base),
            ..
        }) => Ok(format!("{base}/login/{secret}")),
        other => anyhow::bail!("no login URL: {other:?}"),
    }
}

/// The CSRF token a page's forms carry (the first one).
pub fn csrf_of(page: &str) -> Option<String> {
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)?
        .split('"')
        .next()?;
    Some(token.to_owned())
}

#[derive(Debug)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        Self {
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    fn answer(r: Result<ureq::Response, ureq::Error>) -> anyhow::Result<Answer> {
        let resp = match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(e.into()),
        };
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                resp.all(&n)
                    .into_iter()
                    .map(|v| (n.clone(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let status = resp.status();
        let body = resp.into_string()?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// GET with optional `Cookie` and `Authorization` headers.
    pub fn get(
        &self,
        url: &str,
        cookie: Option<&str>,
        bearer: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut r = self.agent.get(url);
        if let Some(c) = cookie {
            r = r.set("Cookie", c);
        }
        if let Some(b) = bearer {
            r = r.set("Authorization", &format!("Bearer {b}"));
        }
        Self::answer(r.call())
    }

    /// POST of a form.
    pub fn form(
        &self,
        url: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        self.form_with(url, cookie, &[], fields)
    }

    /// POST of a form with more headers (`Origin`, …).
    pub fn form_with(
        &self,
        url: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut r = self.agent.post(url);
        if let Some(c) = cookie {
            r = r.set("Cookie", c);
        }
        for (k, v) in headers {
            r = r.set(k, v);
        }
        Self::answer(r.send_form(fields))
    }

    /// POST of a `multipart/form-data` form (a file upload): each part a
    /// name, a file name when it is a file, and its bytes.
    pub fn multipart(
        &self,
        url: &str,
        cookie: Option<&str>,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> anyhow::Result<Answer> {
        let boundary = "vigie-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let disposition = match file {
                Some(f) => format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n"),
                None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
            };
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut r = self.agent.post(url).set(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        );
        if let Some(c) = cookie {
            r = r.set("Cookie", c);
        }
        Self::answer(r.send_bytes(&body))
    }

    /// POST of a JSON body with an API token and optional headers.
    pub fn json(
        &self,
        url: &str,
        bearer: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> anyhow::Result<Answer> {
        let mut r = self
            .agent
            .post(url)
            .set("Authorization", &format!("Bearer {bearer}"));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        Self::answer(
            r.set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        )
    }

    /// Signs in with a one-time URL: its page, then its form. Returns the
    /// `Cookie` header value of the session.
    pub fn sign_in(&self, login_url: &str) -> anyhow::Result<String> {
        let (base, ticket) = login_url
            .split_once("/login/")
            .ok_or_else(|| anyhow::anyhow!("not a login URL: {login_url}"))?;
        let page = self.get(login_url, None, None)?;
        anyhow::ensure!(page.status == 200, "login page: {page:?}");
        let a = self.form(&format!("{base}/login"), None, &[("ticket", ticket)])?;
        anyhow::ensure!(a.status == 303, "sign in refused: {a:?}");
        let set = a
            .header("set-cookie")
            .ok_or_else(|| anyhow::anyhow!("no cookie: {a:?}"))?;
        Ok(set.split(';').next().unwrap_or_default().to_owned())
    }
}
