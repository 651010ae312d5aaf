//! The OpenAPI document (`server/openapi.json`, served at
//! `GET /api/openapi.json`) documents exactly the routes of the router in
//! `src/api/mod.rs`: same (method, path) pairs, no more, no fewer.
//!
//! The routes are read from the source text of `api/mod.rs` (no server is
//! started): every `.route("PATH", METHOD(handler).METHOD(handler)...)`,
//! including the `axum::routing::delete(...)` form. Axum 0.8 writes path
//! parameters as `{param}`, as OpenAPI does, so paths compare verbatim.

use std::collections::BTreeSet;

use serde_json::Value;
use server::testing::source::{Literals, is_ident_byte, literal_end, string_end, strip_comments};

const API_SOURCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs"));

/// The HTTP methods axum's `MethodRouter` has constructors / chain methods
/// for, which are also the operation keys of an OpenAPI path item.
const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

/// Router calls this test cannot see through; if one appears, the test
/// must be taught about it instead of silently missing routes.
const UNSUPPORTED: [&str; 4] = [".nest(", ".nest_service(", ".merge(", ".route_service("];

type Route = (String, String);

fn document() -> Value {
    serde_json::from_str(server::api::OPENAPI)
        .unwrap_or_else(|e| panic!("server/openapi.json is not valid JSON: {e}"))
}

/// The index of the `)` that closes the `(` at `open`.
fn matching_paren(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        if let Some(end) = literal_end(b, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced parentheses after byte {open}");
}

/// The HTTP methods of a method-router expression such as
/// `get(a).patch(b).delete(c)` or `axum::routing::delete(d)`: the
/// identifiers named like a method and called, at nesting depth 0 (so
/// that nothing inside a handler expression counts).
fn methods_of(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let mut found = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = literal_end(b, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            c if is_ident_byte(c) && (i == 0 || !is_ident_byte(b[i - 1])) => {
                let start = i;
                while i < b.len() && is_ident_byte(b[i]) {
                    i += 1;
                }
                let ident = &expr[start..i];
                let called = expr[i..].trim_start().starts_with('(');
                if depth == 0 && called {
                    if METHODS.contains(&ident) {
                        found.push(ident.to_owned());
                    } else if ["any", "on", "any_service", "on_service", "get_service"]
                        .contains(&ident)
                        || ident.ends_with("_service")
                    {
                        panic!(
                            "`{ident}(..)` in a route of api/mod.rs: this test only understands \
                             per-method routes (get/post/put/patch/delete/...); document the \
                             route and teach the test about `{ident}`"
                        );
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Every (METHOD, path) that `.route(..)` calls in `src` register.
fn router_routes(src: &str) -> BTreeSet<Route> {
    let src = strip_comments(src, Literals::Keep);
    for call in UNSUPPORTED {
        assert!(
            !src.contains(call),
            "api/mod.rs uses `{call}..)`: this test cannot see the routes it adds; extend the test"
        );
    }
    let b = src.as_bytes();
    let mut routes = BTreeSet::new();
    let mut from = 0;
    while let Some(pos) = src[from..].find(".route(") {
        let open = from + pos + ".route".len();
        let close = matching_paren(b, open);
        let args = src[open + 1..close].trim_start();
        assert!(
            args.starts_with('"'),
            "`.route(` at byte {open} of api/mod.rs: the path is not a string literal: {args:.60}"
        );
        let path_end = string_end(args.as_bytes(), 0);
        let path = &args[1..path_end - 1];
        let rest = args[path_end..].trim_start();
        let expr = rest.strip_prefix(',').unwrap_or_else(|| {
            panic!("`.route(\"{path}\"` in api/mod.rs: no method router after the path")
        });
        let methods = methods_of(expr);
        assert!(
            !methods.is_empty(),
            "`.route(\"{path}\", ..)` in api/mod.rs: found no HTTP method in `{}`",
            expr.trim()
        );
        for m in methods {
            let route = (m.to_uppercase(), path.to_owned());
            assert!(
                routes.insert(route),
                "{} {path} is routed twice in api/mod.rs",
                m.to_uppercase()
            );
        }
        from = close;
    }
    routes
}

/// Every (METHOD, path) operation of the document.
fn documented_routes(doc: &Value) -> BTreeSet<Route> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .unwrap_or_else(|| panic!("path item {path} is an object"));
        for key in item.keys() {
            if METHODS.contains(&key.as_str()) {
                routes.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

fn show(routes: &BTreeSet<Route>) -> String {
    routes
        .iter()
        .map(|(m, p)| format!("  {m} {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Follows a local `$ref` (`#/a/b`) in the document.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn document_is_openapi_3_1() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(
        version.starts_with("3.1."),
        "openapi is {version:?}, want 3.1.x"
    );
    let title = doc["info"]["title"]
        .as_str()
        .expect("`info.title` is a string");
    assert!(!title.trim().is_empty(), "info.title is empty");
    assert!(
        doc["info"]["version"].is_string(),
        "info.version is missing"
    );
    assert!(doc["paths"].is_object(), "paths is missing");
    for scheme in ["admin", "app", "user"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "security scheme `{scheme}` is missing"
        );
    }
}

#[test]
fn every_router_route_is_documented_and_nothing_else() {
    let doc = document();
    let routed = router_routes(API_SOURCE);
    assert!(
        routed.len() >= 3,
        "found only {} routes in api/mod.rs; is the parser broken?\n{}",
        routed.len(),
        show(&routed)
    );
    let documented = documented_routes(&doc);
    let undocumented: BTreeSet<_> = routed.difference(&documented).cloned().collect();
    let unrouted: BTreeSet<_> = documented.difference(&routed).cloned().collect();
    if !undocumented.is_empty() || !unrouted.is_empty() {
        panic!(
            "server/openapi.json and the router in src/api/mod.rs disagree.\n\
             In the router but not in openapi.json ({}):\n{}\n\
             In openapi.json but not in the router ({}):\n{}",
            undocumented.len(),
            show(&undocumented),
            unrouted.len(),
            show(&unrouted)
        );
    }
}

#[test]
fn every_operation_is_described() {
    let doc = document();
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let params: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .collect();
        for (method, op) in item.as_object().expect("path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let at = format!("{} {path}", method.to_uppercase());
            for field in ["summary", "description"] {
                if op[field].as_str().is_none_or(|s| s.trim().is_empty()) {
                    problems.push(format!("{at}: no {field}"));
                }
            }
            if op["responses"].as_object().is_none_or(|r| r.is_empty()) {
                problems.push(format!("{at}: no responses"));
            }
            let declared: Vec<&Value> = op["parameters"]
                .as_array()
                .into_iter()
                .chain(item["parameters"].as_array())
                .flatten()
                .collect();
            for name in &params {
                let ok = declared.iter().any(|p| {
                    p["in"] == "path" && p["name"] == *name && p["required"] == Value::Bool(true)
                });
                if !ok {
                    problems.push(format!("{at}: path parameter `{name}` is not declared"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn references_resolve_and_error_codes_match_the_protocol() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    let broken: Vec<&str> = refs
        .into_iter()
        .filter(|r| resolve(&doc, r).is_none())
        .collect();
    assert!(broken.is_empty(), "unresolved $refs: {broken:?}");

    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("components.schemas.ErrorCode.enum")
        .iter()
        .map(|c| c.as_str().expect("error codes are strings"))
        .collect();
    let want: BTreeSet<&str> = protocol::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(["NOT_FOUND", "CONFLICT"])
        .collect();
    assert_eq!(
        codes, want,
        "ErrorCode: the protocol's codes plus NOT_FOUND and CONFLICT"
    );
}

#[test]
fn the_route_parser_handles_every_form() {
    let src = r#"
        // .route("/commented", get(nope))
        let _odd = [')', '"', '\'', '(', '\u{29}'];
        fn f<'a>(x: &'a str) -> &'a str { x }
        Router::new()
            .route("/a", get(a))
            .route(
                "/b/{id}",
                get(get_b).patch(update_b).delete(delete_b),
            )
            .route("/c/{x}/d/{y}", axum::routing::delete(remove_d))
            .route("/e", post(make_e).get(list_e)) /* .route("/f", put(f)) */
            .route("/g", put(wrap(get_it(delete_thing))))
            .route("/h", get(|| async { ")" }).post(h))
    "#;
    let got = router_routes(src);
    let want: BTreeSet<Route> = [
        ("GET", "/a"),
        ("GET", "/b/{id}"),
        ("PATCH", "/b/{id}"),
        ("DELETE", "/b/{id}"),
        ("DELETE", "/c/{x}/d/{y}"),
        ("POST", "/e"),
        ("GET", "/e"),
        ("PUT", "/g"),
        ("GET", "/h"),
        ("POST", "/h"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(got, want);
}
