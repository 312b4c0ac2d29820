//! Bucket CORS over HTTP: PutBucketCors, GetBucketCors and DeleteBucketCors for the bucket's
//! owner; the browser's preflight (`OPTIONS` on a bucket or an object, which browsers send
//! unsigned, so it is answered without authentication, as S3 and OBS do); and the
//! `Access-Control-*` headers on the answers to requests that carry an `Origin`. The rules
//! themselves are [`crate::cors`].

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use hyper::body::Incoming;

use super::{ApiError, Body, Ctx, Gateway, MAX_DOCUMENT, Target, empty, no_content, xml_response};
use crate::cors::{self, Allowed, Ask};

impl Ctx<'_> {
    /// PutBucketCors: replaces the bucket's CORS rules.
    pub(super) async fn put_cors(
        &self,
        bucket: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let rules = cors::parse(&self.document(body, MAX_DOCUMENT).await?)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
        self.gw.store.set_bucket_cors(bucket, &rules)?;
        Ok(Response::new(empty()))
    }

    /// GetBucketCors.
    pub(super) fn get_cors(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        match self.gw.store.bucket_cors(bucket)? {
            rules if rules.is_empty() => Err(no_configuration()),
            rules => Ok(xml_response(cors::document(&rules))),
        }
    }

    /// DeleteBucketCors.
    pub(super) fn delete_cors(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        self.gw.store.set_bucket_cors(bucket, &[])?;
        Ok(no_content())
    }
}

fn no_configuration() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NoSuchCORSConfiguration",
        "The CORS configuration does not exist",
    )
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "AccessForbidden",
        format!("CORSResponse: {message}"),
    )
}

fn bad(message: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// A preflight: `200` with what the first matching rule allows, `403 AccessForbidden` when the
/// bucket has no CORS rules (or does not exist) or none allows the request, `400` without an
/// `Origin` or an `Access-Control-Request-Method`.
pub(super) fn preflight(
    gw: &Gateway,
    headers: &HeaderMap,
    t: &Target,
) -> Result<Response<Body>, ApiError> {
    let Some(bucket) = t.bucket.as_deref() else {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the specified method is not allowed against this resource",
        ));
    };
    let origin = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad("Insufficient information. Origin request header needed."))?;
    // A browser sends one method; the OBS SDK one header line per method it names.
    let methods: Vec<&str> = headers
        .get_all(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if methods.is_empty() {
        return Err(bad(
            "Insufficient information. Access-Control-Request-Method request header needed.",
        ));
    }
    let requested: Vec<String> = headers
        .get_all(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cors::header_names)
        .collect();
    // Unsigned: a bucket that does not exist is answered as one without rules, so that anyone
    // cannot learn which names exist.
    let rules = match gw.store.bucket_cors(bucket) {
        Err(crate::store::StoreError::NoSuchBucket) => Vec::new(),
        other => other?,
    };
    if rules.is_empty() {
        return Err(forbidden("CORS is not enabled for this bucket."));
    }
    let ask = Ask {
        origin,
        methods: &methods,
        headers: &requested,
    };
    let allowed = cors::allow(&rules, &ask).ok_or_else(|| {
        forbidden(
            "This CORS request is not allowed. This is usually because the evaluation of Origin, \
             request method / Access-Control-Request-Method or Access-Control-Request-Headers \
             are not whitelisted by the resource's CORS spec.",
        )
    })?;
    let mut r = Response::new(empty());
    put_allowed(r.headers_mut(), &allowed);
    Ok(r)
}

/// Puts on `resp` the headers the bucket's first rule allowing `origin` and `method` gives, if
/// any: what lets the page that sent the request read the answer.
pub(super) fn on_answer(
    gw: &Gateway,
    bucket: &str,
    origin: &str,
    method: &Method,
    resp: &mut Response<Body>,
) {
    let Ok(rules) = gw.store.bucket_cors(bucket) else {
        return;
    };
    let ask = Ask {
        origin,
        methods: &[method.as_str()],
        headers: &[],
    };
    if let Some(allowed) = cors::allow(&rules, &ask) {
        put_allowed(resp.headers_mut(), &allowed);
    }
}

fn put_allowed(h: &mut HeaderMap, a: &Allowed) {
    use http::header::{
        ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
        ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
        ACCESS_CONTROL_MAX_AGE, VARY,
    };
    let mut put = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(ACCESS_CONTROL_ALLOW_ORIGIN, &a.origin);
    put(ACCESS_CONTROL_ALLOW_METHODS, &a.methods);
    if let Some(headers) = &a.headers {
        put(ACCESS_CONTROL_ALLOW_HEADERS, headers);
    }
    if let Some(expose) = &a.expose {
        put(ACCESS_CONTROL_EXPOSE_HEADERS, expose);
    }
    if let Some(age) = a.max_age {
        put(ACCESS_CONTROL_MAX_AGE, &age.to_string());
    }
    if a.credentials {
        put(ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
    }
    // The answer depends on these: a cache must not give it to another origin's request.
    put(
        VARY,
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}
