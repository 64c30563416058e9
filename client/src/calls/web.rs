//! The web console's calls (`vigie_wire::web`), answered by a
//! [`WebAnswer`].

use vigie_wire::tower::ApiAnswer;
use vigie_wire::web::{WebAnswer, WebCall};

use super::Call;

impl Call for WebCall {
    type Answer = WebAnswer;
    fn answer(a: ApiAnswer) -> Result<WebAnswer, Box<ApiAnswer>> {
        match a {
            ApiAnswer::Web(w) => Ok(w),
            other => Err(Box::new(other)),
        }
    }
}
