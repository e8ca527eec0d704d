//! Routes that describe themselves. Each route is served and described by one call, and its
//! request body's schema is read from the handler's own body extractor, so the OpenAPI document
//! (`openapi::document`) is generated from the routers the service runs: a route cannot be
//! served undescribed, nor described with a body its handler does not take.

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method};
use axum::routing::{on, MethodFilter};
use axum::Router;
use schemars::JsonSchema;

use super::extract::{CommandContext, EmptyBody, JsonBody, JsonValueOf};
use super::openapi::{json_schema, Body, Endpoint, Other, JSON};

/// A route's description: a command of an aggregate, or another endpoint.
pub enum Described {
    Command(Endpoint),
    Other(Other),
}

/// A router and the description of every route it serves.
pub struct Documented<S> {
    router: Router<S>,
    described: Vec<Described>,
}

impl<S: Clone + Send + Sync + 'static> Default for Documented<S> {
    fn default() -> Self {
        Documented {
            router: Router::new(),
            described: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Documented<S> {
    /// Serves a command endpoint at its method and path; its body is what `handler` reads.
    pub fn command<H, T>(mut self, mut endpoint: Endpoint, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: Extractors + 'static,
    {
        endpoint.body = T::body();
        self.router = self.router.route(endpoint.path, on(filter(endpoint.method), handler));
        self.described.push(Described::Command(endpoint));
        self
    }

    /// Serves another endpoint. A handler reading a JSON body documents it; `other.request`
    /// names the media type of a body read otherwise (a file, a form).
    pub fn other<H, T>(mut self, mut other: Other, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: Extractors + 'static,
    {
        if let Some(body) = T::body() {
            assert!(
                other.request.is_none_or(|(media, _)| media == JSON),
                "{} {} reads JSON but is described as taking another media type",
                other.method,
                other.path
            );
            other.request = Some((JSON, Some(body)));
        }
        self.router = self.router.route(other.path, on(filter(other.method), handler));
        self.described.push(Described::Other(other));
        self
    }

    /// The router, to be layered and given its state, and what it serves.
    pub fn finish(self) -> (Router<S>, Vec<Described>) {
        (self.router, self.described)
    }
}

fn filter(method: &str) -> MethodFilter {
    Method::from_bytes(method.as_bytes())
        .ok()
        .and_then(|method| MethodFilter::try_from(method).ok())
        .unwrap_or_else(|| panic!("{method} is not a method a route can take"))
}

/// What a handler's last extractor says of the request body: the JSON schema of the body it
/// reads, or none. Implemented for each extractor that can stand last in a handler here; a
/// handler ending in another one does not compile until it says what it reads.
pub trait RequestBody {
    fn body() -> Option<Body>;
}

impl<T: JsonSchema> RequestBody for JsonBody<T> {
    fn body() -> Option<Body> {
        Some(json_schema::<T>())
    }
}

impl<T: JsonSchema> RequestBody for JsonValueOf<T> {
    fn body() -> Option<Body> {
        Some(json_schema::<T>())
    }
}

macro_rules! no_json_body {
    ($($extractor:ty),* $(,)?) => {
        $(impl RequestBody for $extractor {
            fn body() -> Option<Body> {
                None
            }
        })*
    };
}

no_json_body!(
    EmptyBody,
    CommandContext,
    HeaderMap,
    axum::body::Bytes,
    Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
);

impl<T> RequestBody for Path<T> {
    fn body() -> Option<Body> {
        None
    }
}

impl<T> RequestBody for State<T> {
    fn body() -> Option<Body> {
        None
    }
}

/// A handler's extractors as axum's `Handler<T, S>` names them: `(M, T1, ..., Tn)`, where only
/// the last one may read the body.
pub trait Extractors {
    fn body() -> Option<Body>;
}

macro_rules! extractors {
    ($($first:ident),*; $last:ident) => {
        impl<M, $($first,)* $last: RequestBody> Extractors for (M, $($first,)* $last) {
            fn body() -> Option<Body> {
                $last::body()
            }
        }
    };
}

extractors!(; A);
extractors!(A; B);
extractors!(A, B; C);
extractors!(A, B, C; D);
extractors!(A, B, C, D; E);
