//! The checked-in OpenAPI document (`firmware/openapi.json`) must be the one the code
//! generates, and the served document must be the same. Regenerate after an API change with
//! `FLOWGATE_UPDATE_OPENAPI=1 cargo test -p flowgate --test api_openapi`.

mod api_support;

use std::collections::BTreeSet;

use api_support::*;
use reqwest::Method;
use serde_json::Value;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn checked_in_openapi_is_up_to_date() {
    let generated = flowgate::api::openapi::document_json();
    if std::env::var_os("FLOWGATE_UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &generated).expect("write openapi.json");
        return;
    }
    let on_disk = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        on_disk == generated,
        "firmware/openapi.json is out of date with the code; regenerate it with\n  \
         FLOWGATE_UPDATE_OPENAPI=1 cargo test -p flowgate --test api_openapi\nand commit the result"
    );
}

/// Every operation documents the errors the server can answer with, so a schema-driven
/// fuzzer (schemathesis) finds no undocumented status code.
#[test]
fn every_operation_documents_its_errors() {
    let doc: Value = serde_json::from_str(&flowgate::api::openapi::document_json()).expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            operations += 1;
            let codes: BTreeSet<&str> = op["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(String::as_str)
                .collect();
            let mut required = vec!["500"];
            if path != "/v1.0/gateway/health" {
                required.push("401");
            }
            if path.contains('{') {
                required.extend(["400", "404"]);
            }
            if op.get("requestBody").is_some() {
                required.extend(["400", "413", "415"]);
            }
            for code in required {
                assert!(
                    codes.contains(code),
                    "{method} {path} does not document {code}: {codes:?}"
                );
            }
        }
    }
    assert!(operations >= 55, "only {operations} operations documented");
}

#[tokio::test]
async fn served_document_is_the_generated_one() {
    let gw = Gateway::start().await;
    let served = gw.ok(Method::GET, "/v1.0/openapi.json", None).await;
    let generated: Value =
        serde_json::from_str(&flowgate::api::openapi::document_json()).expect("json");
    assert_eq!(served, generated);
}
