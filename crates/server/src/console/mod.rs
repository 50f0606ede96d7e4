//! The console: ims in a browser, at `/console`, for the people who review results and run the
//! service (docs/console.md). Pages are rendered on the server (askama templates, escaped by
//! default); a session is a random token in an HttpOnly, SameSite=Strict cookie, kept in the
//! database so that any node of a cluster serves it; every change carries the session's CSRF
//! token as well, and the server checks the account's grant on each, whatever the page showed.

mod billing;
mod libraries;
mod overview;
mod picture;
mod policies;
mod results;
mod review;
mod sign_in;
pub mod texts;
mod try_image;

use crate::AppState;
use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use engine::accounts::{Access, Account, Operation};
use engine::console::{token_hash, Session, SessionRules};
use serde::{Deserialize, Serialize};
use texts::{Lang, Texts};

/// The console's part of the configuration (`[console]`, docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Serve the console at `/console`.
    pub enabled: bool,
    /// Minutes after which an unused session is over.
    pub idle_minutes: i64,
    /// Hours after which a session is over, however busy.
    pub lifetime_hours: i64,
    /// Failed sign-ins of one SecretId or account within `failure_window_minutes` after which
    /// it is refused until the window has passed; an address gets four times as many.
    pub max_failures: u32,
    pub failure_window_minutes: i64,
    /// Mark cookies `Secure` although ims serves plain HTTP (TLS ends at a proxy in front);
    /// they always are when `server.tls` is set.
    pub secure_cookies: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: true,
            idle_minutes: 30,
            lifetime_hours: 12,
            max_failures: 5,
            failure_window_minutes: 15,
            secure_cookies: false,
        }
    }
}

impl ConsoleSettings {
    pub fn rules(&self) -> SessionRules {
        SessionRules {
            idle_secs: self.idle_minutes * 60,
            lifetime_secs: self.lifetime_hours * 3600,
            max_failures: self.max_failures,
            failure_window_secs: self.failure_window_minutes * 60,
        }
    }
}

const SESSION_COOKIE: &str = "ims_session";
const LANG_COOKIE: &str = "ims_lang";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/sign-in", get(sign_in::page).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/results", get(results::list))
        .route("/console/results/{id}", get(results::detail))
        .route("/console/results/{id}/thumbnail", get(results::thumbnail))
        .route("/console/results/{id}/correction", post(results::correct))
        .route("/console/policies", get(policies::list).post(policies::create))
        .route("/console/policies/{biz_type}", get(policies::edit).post(policies::submit))
        .route("/console/libraries", get(libraries::list))
        .route("/console/libraries/{kind}", post(libraries::create))
        .route("/console/libraries/{kind}/{id}", get(libraries::show))
        // Files for an image library: as much as one API call may carry.
        .route(
            "/console/libraries/{kind}/{id}/add",
            post(libraries::add).layer(axum::extract::DefaultBodyLimit::max(crate::call::MAX_BODY_BYTES as usize)),
        )
        .route("/console/libraries/{kind}/{id}/remove", post(libraries::remove))
        .route(
            "/console/try",
            get(try_image::page)
                .post(try_image::submit)
                .layer(axum::extract::DefaultBodyLimit::max(crate::call::MAX_BODY_BYTES as usize)),
        )
        .route("/console/overview", get(overview::page))
        .route("/console/billing", get(billing::page).post(billing::change))
        .route("/console/chart.js", get(overview::chart_library))
        .route("/console/review", get(review::next))
        .route("/console/review/{id}", post(review::decide))
        .route("/console/console.css", get(stylesheet))
        .route("/console/console.js", get(script))
        .route("/console/{*rest}", get(not_found).post(not_found))
        .route_layer(axum::middleware::from_fn(guard))
}

/// Every console response: the language chosen (a `lang` query remembered in a cookie), the
/// browser told to run nothing but our own files and never frame us, and a POST from another
/// site refused before any handler sees it.
async fn guard(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let asked = request
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "lang").map(|(_, v)| v.into_owned()));
    let remembered = cookie(headers, LANG_COOKIE).map(str::to_owned);
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let lang = texts::choose(asked.as_deref().or(remembered.as_deref()), accept.as_deref());
    if request.method() == Method::POST && !same_origin(headers) {
        return page_error(lang, StatusCode::FORBIDDEN, texts::texts(lang).expired_form);
    }
    request.extensions_mut().insert(lang);
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if asked.is_some() {
        let value = format!("{LANG_COOKIE}={}; Path=/console; SameSite=Strict; Max-Age=31536000", texts::code(lang));
        if let Ok(value) = HeaderValue::from_str(&value) {
            h.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Whether a POST comes from a page of this server: its `Origin` (sent by every current
/// browser on a POST) names the host it was sent to, and `Sec-Fetch-Site` does not say
/// another site.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if text("sec-fetch-site").is_some_and(|site| site == "cross-site" || site == "same-site") {
        return false;
    }
    match (text(header::ORIGIN.as_str()), text(header::HOST.as_str())) {
        (Some(origin), Some(host)) => {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        }
        (Some(_), None) => false,
        // Without an Origin (an old browser, a script): the CSRF token decides.
        (None, _) => true,
    }
}

/// The value of one cookie.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Performs an API action as the signed-in account, exactly as a signed call of the newest
/// version would be performed (grant, rate limit, billing, the parameters checked against the
/// action's definition, its handler): the console can do nothing a call could not.
pub(crate) async fn act(
    state: &AppState,
    visitor: &Visitor,
    action: &str,
    params: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, protocol::ApiError> {
    let invocation = crate::actions::Invocation {
        account: visitor.account.clone(),
        version: protocol::schema::Version::ALL[0].as_str().to_owned(),
        action: action.to_owned(),
        params: crate::call::Params::Json(params.to_string().into()),
        secret_id: String::new(),
        origin: engine::history::Origin::Console,
    };
    let (request_id, mut label) = (engine::stamp::new_id(), "-");
    let mut result =
        crate::actions::perform(state, invocation, &request_id, std::time::Instant::now(), &mut label).await;
    if let Ok(fields) = &mut result {
        fields.insert("RequestId".into(), request_id.clone().into());
    }
    let code = result.as_ref().map_or_else(|e| e.code.as_str(), |_| "Success");
    metrics::counter!("ims_console_actions_total", "action" => label, "code" => code).increment(1);
    tracing::info!(account = %visitor.account.id, action = label, code, %request_id, "console action");
    result
}

/// Who is at the browser: a live session and its account.
pub(crate) struct Visitor {
    pub account: Account,
    pub session: Session,
    pub token_hash: String,
}

impl Visitor {
    /// Whether the account may change things (a read-only sub-account may not).
    pub fn may_write(&self) -> bool {
        self.account.permits(Operation::Write)
    }

    /// Refused unless `csrf` is this session's token.
    pub fn check_csrf(&self, csrf: &str) -> Result<(), Refusal> {
        use subtle::ConstantTimeEq;
        if !bool::from(csrf.as_bytes().ct_eq(self.session.csrf.as_bytes())) {
            return Err(Refusal::ExpiredForm);
        }
        Ok(())
    }

    /// Refused unless `csrf` is this session's token and the account may write.
    pub fn check_change(&self, csrf: &str) -> Result<(), Refusal> {
        self.check_csrf(csrf)?;
        if !self.may_write() {
            return Err(Refusal::ReadOnly);
        }
        Ok(())
    }
}

/// A change a page asks for: its form, sent by a signed-in visitor with the session's CSRF
/// token, from an account that may write; anything else is answered (sign-in page, 403 page)
/// before the handler runs.
pub(crate) struct Change<T> {
    pub visitor: Visitor,
    pub form: T,
    pub lang: Lang,
}

/// One part of a multipart form: its name, its file's name (for a file), its bytes.
pub(crate) struct Part {
    pub name: String,
    pub file: Option<String>,
    pub bytes: bytes::Bytes,
}

impl Part {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).trim().to_owned()
    }
}

/// The parts of a multipart form (files for a library, an image to try): a change like any
/// other, so the CSRF token among them is checked with the account's grant.
pub(crate) async fn multipart_change(
    visitor: &Visitor,
    lang: Lang,
    mut form: axum::extract::Multipart,
) -> Result<Vec<Part>, Response> {
    let unreadable =
        |e: axum::extract::multipart::MultipartError| page_error(lang, StatusCode::BAD_REQUEST, &e.body_text());
    let mut parts = Vec::new();
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        let (name, file) = (field.name().unwrap_or_default().to_owned(), field.file_name().map(str::to_owned));
        parts.push(Part { name, file, bytes: field.bytes().await.map_err(unreadable)? });
    }
    let csrf = parts.iter().find(|p| p.name == "csrf").map(Part::text).unwrap_or_default();
    visitor.check_change(&csrf).map_err(|refused| refused.page(lang))?;
    Ok(parts)
}

/// A form and the CSRF token sent with it.
#[derive(Deserialize)]
struct Signed<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

impl<T: serde::de::DeserializeOwned + Send> axum::extract::FromRequest<AppState> for Change<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = request.into_parts();
        let lang = parts.extensions.get::<Lang>().copied().unwrap_or_default();
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        let axum::Form(Signed { csrf, form }) =
            axum::Form::<Signed<T>>::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        visitor.check_change(&csrf).map_err(|refused| refused.page(lang))?;
        Ok(Change { visitor, form, lang })
    }
}

/// Why a change was refused.
pub(crate) enum Refusal {
    /// No CSRF token, or not this session's.
    ExpiredForm,
    /// The account may only read.
    ReadOnly,
}

impl Refusal {
    pub fn page(self, lang: Lang) -> Response {
        let t = texts::texts(lang);
        let message = match self {
            Refusal::ExpiredForm => t.expired_form,
            Refusal::ReadOnly => t.forbidden,
        };
        page_error(lang, StatusCode::FORBIDDEN, message)
    }
}

/// A handler that takes a `Visitor` serves only signed-in browsers: the others get the sign-in
/// page (or a 503 page when the database does not answer) instead.
impl axum::extract::FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let lang = parts.extensions.get::<Lang>().copied().unwrap_or_default();
        visitor(state, &parts.headers, lang).await
    }
}

/// The signed-in visitor, or the answer to send instead: to the sign-in page when there is no
/// live session (or its account lost its grant), a 503 page when the database does not answer.
async fn visitor(state: &AppState, headers: &HeaderMap, lang: Lang) -> Result<Visitor, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Err(to_sign_in()) };
    let (repository, accounts) = (state.console.clone(), state.accounts.clone());
    let (rules, hash) = (state.console_settings.rules(), token_hash(token));
    let found = tokio::task::spawn_blocking(move || {
        let Some(session) = repository.session(&hash, &rules, engine::stamp::now()).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let account = accounts.account(session.account).map_err(|e| e.to_string())?;
        Ok::<_, String>(Some(Visitor { account, session, token_hash: hash }))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match found {
        Ok(Some(visitor)) if visitor.account.access != Access::None => Ok(visitor),
        Ok(_) => Err(to_sign_in()),
        Err(reason) => Err(unavailable(lang, &reason)),
    }
}

fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

/// The database failed: said on the page, the reason in the log.
pub(crate) fn unavailable(lang: Lang, reason: &str) -> Response {
    tracing::error!(%reason, "console: the database did not answer");
    metrics::counter!("ims_storage_failures_total").increment(1);
    page_error(lang, StatusCode::SERVICE_UNAVAILABLE, texts::texts(lang).unavailable)
}

/// What every page's frame needs.
pub(crate) struct Frame {
    pub t: &'static Texts,
    pub lang: &'static str,
    /// The visitor's account name and id, empty on the sign-in page.
    pub account: String,
    pub read_only: bool,
    pub csrf: String,
}

impl Frame {
    pub fn new(lang: Lang, visitor: Option<&Visitor>) -> Frame {
        Frame {
            t: texts::texts(lang),
            lang: texts::code(lang),
            account: visitor.map(|v| format!("{} ({})", v.account.name, v.account.id)).unwrap_or_default(),
            read_only: visitor.is_some_and(|v| !v.may_write()),
            csrf: visitor.map(|v| v.session.csrf.clone()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    frame: Frame,
    message: &'a str,
}

pub(crate) fn page_error(lang: Lang, status: StatusCode, message: &str) -> Response {
    (status, render(&ErrorPage { frame: Frame::new(lang, None), message })).into_response()
}

/// An action's error, said on a page: 503 when the database failed, 404 for what does not
/// exist, else 400.
pub(crate) fn api_error_page(lang: Lang, e: &protocol::ApiError) -> Response {
    let status = match e.code {
        protocol::Code::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        code if code.as_str().starts_with("ResourceNotFound") => StatusCode::NOT_FOUND,
        code if code.as_str().starts_with("UnauthorizedOperation") => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    page_error(lang, status, &e.message(lang))
}

/// A page's HTML; a template that fails to render (it cannot, short of a bug) is a 500.
pub(crate) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a page did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn home() -> Redirect {
    Redirect::to("/console/overview")
}

async fn not_found(axum::Extension(lang): axum::Extension<Lang>) -> Response {
    page_error(lang, StatusCode::NOT_FOUND, texts::texts(lang).not_found)
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../templates/console/console.css"),
    )
        .into_response()
}

/// The console's one script: keyboard shortcuts (pages work without it).
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../templates/console/console.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_post_from_another_site_is_told_apart() {
        assert!(same_origin(&headers(&[("host", "ims.example:8080"), ("origin", "http://ims.example:8080")])));
        assert!(same_origin(&headers(&[("host", "ims.example"), ("origin", "https://ims.example")])));
        assert!(!same_origin(&headers(&[("host", "ims.example"), ("origin", "https://evil.example")])));
        assert!(!same_origin(&headers(&[("host", "ims.example"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[("host", "ims.example"), ("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&headers(&[("host", "ims.example"), ("sec-fetch-site", "same-origin")])));
        assert!(same_origin(&headers(&[("host", "ims.example")])), "no Origin: the CSRF token decides");
    }

    #[test]
    fn cookies_are_read_by_name() {
        let h = headers(&[("cookie", "a=1; ims_session=tok; ims_lang=zh"), ("cookie", "b=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, LANG_COOKIE), Some("zh"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "ims"), None);
    }
}
