//! OpenAPI schemas (utoipa) of the wire types whose JSON form serde code
//! writes by hand: the b64u ids and QR secret, the origin, the error code
//! list and the `format`-tagged attestation. Only built with the `openapi`
//! feature (the server's `GET /openapi.json`); the phone apps never carry it.
//!
//! Each schema is derived from the same constants the (de)serializers use
//! (`ID_LEN`, [`ErrorCode::ALL`]), so the document cannot promise a form
//! the server does not accept.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Discriminator, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::api::{Attestation, ErrorCode};
use crate::ids::{EnrollmentId, LoginId, QrSecret};
use crate::origin::Origin;

/// 16 bytes as canonical base64url without padding: 21 free characters and
/// a last one whose low 4 bits are zero.
const B64U16_PATTERN: &str = "^[A-Za-z0-9_-]{21}[AQgw]$";

fn b64u16(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .pattern(Some(B64U16_PATTERN))
        .min_length(Some(22))
        .max_length(Some(22))
        .description(Some(description))
        .into()
}

macro_rules! b64u16_schema {
    ($name:ident, $doc:literal) => {
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                b64u16($doc)
            }
        }
        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

b64u16_schema!(LoginId, "Login id: 16 bytes, base64url without padding.");
b64u16_schema!(
    EnrollmentId,
    "Enrollment id: 16 bytes, base64url without padding."
);
b64u16_schema!(
    QrSecret,
    "The QR code's one-time secret: 16 bytes, base64url without padding."
);

impl PartialSchema for Origin {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into())))
            .description(Some(
                "Server origin: scheme://host[:port], lower case, no path (docs/protocol.md §2).",
            ))
            .into()
    }
}
impl ToSchema for Origin {}

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .description(Some(
                "Stable error code (docs/api.md). Clients treat an unknown code as a generic error of its status.",
            ))
            .into()
    }
}
impl ToSchema for ErrorCode {}

fn b64u_string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .pattern(Some("^[A-Za-z0-9_-]*$"))
        .description(Some(description))
}

fn format_tag(value: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .enum_values(Some([value]))
}

impl PartialSchema for Attestation {
    fn schema() -> RefOr<Schema> {
        let android = ObjectBuilder::new()
            .title(Some("android-key"))
            .property("format", format_tag("android-key"))
            .property(
                "certificates",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(b64u_string("DER certificate, base64url"))
                    .description(Some(
                        "KeyStore.getCertificateChain(alias): DER certificates, leaf first.",
                    )),
            )
            .required("format")
            .required("certificates");
        let apple = ObjectBuilder::new()
            .title(Some("apple-appattest"))
            .property("format", format_tag("apple-appattest"))
            .property(
                "key_id",
                b64u_string("App Attest key identifier (32 bytes), base64url"),
            )
            .property(
                "attestation_object",
                b64u_string("The CBOR attestation object from attestKey, base64url"),
            )
            .required("format")
            .required("key_id")
            .required("attestation_object");
        OneOfBuilder::new()
            .item(android)
            .item(apple)
            .discriminator(Some(Discriminator::new("format")))
            .description(Some(
                "The platform's attestation of the device key, tagged by `format` (docs/protocol.md §3.3).",
            ))
            .into()
    }
}
impl ToSchema for Attestation {}
