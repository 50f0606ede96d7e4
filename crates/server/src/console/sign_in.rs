//! Signing in (with an API key pair, or an account id and the console password the CLI set)
//! and out. Failures are counted per SecretId or account and per address, in the database, so
//! the throttle holds across the nodes of a cluster.

use super::texts::{self, Lang};
use super::{render, unavailable, Frame, Visitor, SESSION_COOKIE};
use crate::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use engine::accounts::{Access, Account, AccountId};
use engine::console::{new_session, password_matches, token_hash};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    frame: Frame,
    message: &'static str,
    /// What was typed, given back after a failure (never the secret).
    secret_id: String,
    account_id: String,
}

pub(super) async fn page(Extension(lang): Extension<Lang>) -> Response {
    render(&SignInPage {
        frame: Frame::new(lang, None),
        message: "",
        secret_id: String::new(),
        account_id: String::new(),
    })
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    secret_id: String,
    #[serde(default)]
    secret_key: String,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    password: String,
}

/// How the visitor proves who they are.
enum Proof {
    Key { secret_id: String, secret_key: String },
    Password { account: AccountId, password: String },
}

impl Proof {
    /// The key pair when a SecretId is given, else the password; `None` when neither is whole.
    fn of(form: SignInForm) -> Option<Proof> {
        let secret_id = form.secret_id.trim().to_owned();
        if !secret_id.is_empty() {
            return Some(Proof::Key { secret_id, secret_key: form.secret_key });
        }
        let account = AccountId(form.account_id.trim().parse().ok()?);
        Some(Proof::Password { account, password: form.password })
    }

    /// What failures are counted against.
    fn subject(&self) -> String {
        match self {
            Proof::Key { secret_id, .. } => format!("key:{secret_id}"),
            Proof::Password { account, .. } => format!("account:{account}"),
        }
    }
}

pub(super) async fn submit(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<SignInForm>,
) -> Response {
    let t = texts::texts(lang);
    let typed = (form.secret_id.trim().to_owned(), form.account_id.trim().to_owned());
    let refused = |status: StatusCode, message: &'static str| {
        let page = SignInPage {
            frame: Frame::new(lang, None),
            message,
            secret_id: typed.0.clone(),
            account_id: typed.1.clone(),
        };
        (status, render(&page)).into_response()
    };
    let Some(proof) = Proof::of(form) else { return refused(StatusCode::UNAUTHORIZED, t.bad_sign_in) };
    let (subject, address) = (proof.subject(), format!("address:{}", peer.ip()));
    let (console, accounts, rules) = (state.console.clone(), state.accounts.clone(), state.console_settings.rules());
    let outcome = tokio::task::spawn_blocking(move || {
        let now = engine::stamp::now();
        let since = rules.failure_window_start(now);
        let storage = |e: &dyn std::fmt::Display| e.to_string();
        let throttled = !rules.may_try(console.failures(&subject, since).map_err(|e| storage(&e))?)
            || !rules.may_try(console.failures(&address, since).map_err(|e| storage(&e))? / 4);
        if throttled {
            return Ok(Outcome::Throttled);
        }
        let account = match proof {
            Proof::Key { secret_id, secret_key } => accounts
                .credential(&secret_id)
                .map_err(|e| storage(&e))?
                .filter(|c| {
                    use subtle::ConstantTimeEq;
                    bool::from(c.secret_key.expose().as_bytes().ct_eq(secret_key.as_bytes()))
                })
                .map(|c| c.account),
            Proof::Password { account, password } => match console.password(account).map_err(|e| storage(&e))? {
                Some(phc) if password_matches(&password, &phc) => {
                    Some(accounts.account(account).map_err(|e| storage(&e))?)
                }
                _ => None,
            },
        };
        let Some(account) = account.filter(|a: &Account| a.access != Access::None) else {
            console.note_failure(&subject, now, since).map_err(|e| storage(&e))?;
            console.note_failure(&address, now, since).map_err(|e| storage(&e))?;
            return Ok(Outcome::Refused);
        };
        console.clear_failures(&subject).map_err(|e| storage(&e))?;
        let (token, session) = new_session(account.id, now);
        console.open_session(&token_hash(&token), &session).map_err(|e| storage(&e))?;
        tracing::info!(account = %account.id, "console: signed in");
        Ok::<_, String>(Outcome::SignedIn(token))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match outcome {
        Ok(Outcome::SignedIn(token)) => {
            let settings = &state.console_settings;
            let secure = if settings.secure_cookies || state.settings.tls.cert.is_some() { "; Secure" } else { "" };
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                settings.lifetime_hours * 3600
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/console/overview")).into_response()
        }
        Ok(Outcome::Throttled) => refused(StatusCode::TOO_MANY_REQUESTS, t.throttled),
        Ok(Outcome::Refused) => refused(StatusCode::UNAUTHORIZED, t.bad_sign_in),
        Err(reason) => unavailable(lang, &reason),
    }
}

enum Outcome {
    SignedIn(String),
    Throttled,
    Refused,
}

#[derive(Deserialize)]
pub(super) struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (the CSRF token is needed: another site must not sign a reviewer out).
pub(super) async fn sign_out(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    visitor: Visitor,
    Form(form): Form<SignOutForm>,
) -> Response {
    if let Err(refused) = visitor.check_csrf(&form.csrf) {
        return refused.page(lang);
    }
    let console = state.console.clone();
    let hash = visitor.token_hash.clone();
    if let Err(reason) = tokio::task::spawn_blocking(move || console.close_session(&hash).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    {
        return unavailable(lang, &reason);
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/console/sign-in")).into_response()
}

#[cfg(test)]
mod tests {
    use crate::console::ConsoleSettings;
    use crate::testing::{state_with, FakeModels};
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// The session cookie a sign-in sets, served over TLS or not, `console.secure_cookies` or not.
    async fn session_cookie(tls: bool, secure_cookies: bool) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::ServerSettings::default();
        if tls {
            (settings.tls.cert, settings.tls.key) = (Some("cert.pem".into()), Some("key.pem".into()));
        }
        let (mut state, account) = state_with(dir.path(), FakeModels::scoring(0.0), settings);
        state.console_settings = Arc::new(ConsoleSettings { secure_cookies, ..ConsoleSettings::default() });
        let (key, secret) = state.accounts.create_key(account.id).unwrap();
        let form = format!("secret_id={}&secret_key={}", key.secret_id, secret.expose());
        let mut request = Request::post("/console/sign-in")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        let response = crate::router(state).oneshot(request).await.unwrap();
        assert_eq!(response.status(), 303);
        response.headers()["set-cookie"].to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn the_session_cookie_is_secure_over_https_or_when_told() {
        let plain = session_cookie(false, false).await;
        assert!(plain.contains("HttpOnly; SameSite=Strict") && !plain.contains("Secure"), "{plain}");
        assert!(session_cookie(true, false).await.ends_with("; Secure"));
        assert!(session_cookie(false, true).await.ends_with("; Secure"));
    }
}
