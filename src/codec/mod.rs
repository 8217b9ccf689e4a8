//! Stage 2, bytes ⇄ records: the Confluent wire format (schema registry), Avro single-object
//! encoding (compiled-in schemas, no registry) and the JSON form, told apart by their first
//! bytes ([`detect`]).
//!
//! | file | owns |
//! | --- | --- |
//! | `framing.rs` | [`Framing`], [`detect`], header constants |
//! | `resolve.rs` | writer → reader resolution keeping union branches by name |
//! | `schemas.rs` | the compiled-in `schemas/avro/*.avsc`, fingerprints, prebuilt readers, Avro body decode/encode |
//! | `single_object.rs` | `C3 01` + fingerprint framing |
//! | `confluent.rs` | `00` + schema id framing via `schema_registry_converter` |
//! | `json.rs` | the JSON form (serde form of the model) |
//! | `leb128.rs` | unsigned varints (Avro's integers, and the state codec's) |
//! | `avro_value/` | model ⇄ `apache_avro::types::Value` |
//! | `direct/` | Avro bodies of the compiled-in schemas read into and written from the model directly (the fast path) |
//! | `record.rs` | [`Record`], implemented for the five topic records |
//! | `error.rs` | [`CodecError`] |
//!
//! Invariants: malformed bytes never panic and never allocate without bound — payloads above
//! [`Codec::max_payload`] are refused before decoding, and apache-avro's process-wide
//! allocation limit is set to [`AVRO_MAX_ALLOCATION`] when the first codec is built. Avro data
//! is always read with its writer schema resolved against our reader schema, so compatible
//! schema evolution works in both directions. Schemas are parsed and readers built once per
//! [`Codec`], never per record. Where no resolution is needed — a compiled-in schema on both
//! sides — the records that have one go through their direct reader or writer (`direct/`)
//! instead of apache-avro's `Value`; whatever a direct reader does not take as is goes the
//! `Value` way, so results and errors are the same.

mod avro_value;
mod confluent;
mod direct;
mod error;
mod framing;
mod json;
pub(crate) mod leb128;
mod record;
mod resolve;
mod schemas;
mod single_object;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::SrSettings;

pub use confluent::{RegistryCheck, RegistryCheckError};
pub use error::{BodyProblem, CodecError};
pub use framing::{
    detect, Framing, CONFLUENT_HEADER_LEN, CONFLUENT_MAGIC, SINGLE_OBJECT_HEADER_LEN,
    SINGLE_OBJECT_MARKER,
};
pub use record::Record;
pub use schemas::{full_name, EMBEDDED_SOURCES, NAMESPACE, TOP_LEVEL};

use schemas::{ReaderSchema, WriterSchema};

/// How requests to the schema registry authenticate. Its `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum RegistryAuth {
    #[default]
    None,
    /// HTTP basic authentication (Confluent Cloud: the API key and secret).
    Basic { user: String, password: String },
    /// A bearer token.
    Bearer(String),
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::None => f.write_str("None"),
            RegistryAuth::Basic { user, .. } => {
                write!(f, "Basic {{ user: {user:?}, password: *** }}")
            }
            RegistryAuth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// apache-avro's allocation limit for any single length-prefixed item (process-wide; apache-avro
/// keeps the first value set). A 2 GiB length prefix fails cleanly instead of allocating.
pub const AVRO_MAX_ALLOCATION: usize = 16 * 1024 * 1024;

/// Default largest payload decoded ([`Codec::with_max_payload`] changes it).
pub const DEFAULT_MAX_PAYLOAD: usize = 4 * 1024 * 1024;

/// Default timeout of schema registry calls.
pub const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Encodes and decodes [`Record`]s in every [`Framing`]. Cheap to clone: clones share the
/// parsed schemas and the registry caches.
#[derive(Clone)]
pub struct Codec {
    /// Reader schema per record full name (the model's view).
    readers: HashMap<String, Arc<ReaderSchema>>,
    /// The compiled-in schema per record full name: what this codec writes with.
    own: HashMap<String, Arc<WriterSchema>>,
    /// Every writer schema single-object payloads may carry, by fingerprint.
    known: HashMap<[u8; 8], Arc<WriterSchema>>,
    registry: Option<confluent::Registry>,
    max_payload: usize,
    /// Single-object headers whose bodies a record's direct reader may read: compiled-in
    /// schemas that are also the record's reader schema (no resolution to do).
    direct_read: Vec<[u8; SINGLE_OBJECT_HEADER_LEN]>,
    /// Single-object headers of the compiled-in schemas, whose bodies a record's direct writer
    /// may write.
    direct_write: Vec<[u8; SINGLE_OBJECT_HEADER_LEN]>,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut known: Vec<String> = self
            .known
            .iter()
            .map(|(fp, w)| format!("{}@{}", w.full_name, hex::encode(fp)))
            .collect();
        known.sort();
        f.debug_struct("Codec")
            .field("known_writers", &known)
            .field("registry", &self.registry.is_some())
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

impl Codec {
    /// A codec over the compiled-in schemas, without a registry (single-object and JSON only).
    ///
    /// # Errors
    /// [`CodecError::Schema`] if a compiled-in schema does not parse (a build defect that the
    /// test suite catches).
    pub fn embedded() -> Result<Codec, CodecError> {
        apache_avro::util::max_allocation_bytes(AVRO_MAX_ALLOCATION);
        let mut codec = Codec {
            readers: HashMap::new(),
            own: HashMap::new(),
            known: HashMap::new(),
            registry: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            direct_read: Vec::new(),
            direct_write: Vec::new(),
        };
        for schema in schemas::embedded_top_level()? {
            let reader = Arc::new(ReaderSchema::new(schema.clone())?);
            let writer = Arc::new(WriterSchema::new(schema)?);
            codec.readers.insert(reader.full_name.clone(), reader);
            codec.known.insert(writer.fingerprint(), writer.clone());
            codec.direct_read.push(writer.header);
            codec.direct_write.push(writer.header);
            codec.own.insert(writer.full_name.clone(), writer);
        }
        Ok(codec)
    }

    /// Adds a Confluent-API schema registry at `url` (10 s timeout, no auth), enabling the
    /// Confluent framing in [`Codec::decode`] and [`Codec::encode`].
    ///
    /// # Errors
    /// [`CodecError::Registry`] when the HTTP client cannot be built from the URL.
    pub fn with_registry(self, url: &str) -> Result<Codec, CodecError> {
        self.with_registry_auth(url, &RegistryAuth::None)
    }

    /// [`Codec::with_registry`] authenticating every request with `auth`.
    ///
    /// # Errors
    /// As [`Codec::with_registry`].
    pub fn with_registry_auth(self, url: &str, auth: &RegistryAuth) -> Result<Codec, CodecError> {
        let mut builder = SrSettings::new_builder(url.trim_end_matches('/').to_string());
        builder.set_timeout(REGISTRY_TIMEOUT);
        match auth {
            RegistryAuth::None => {}
            RegistryAuth::Basic { user, password } => {
                builder.set_basic_authorization(user, Some(password));
            }
            RegistryAuth::Bearer(token) => {
                builder.set_token_authorization(token);
            }
        }
        let settings = builder.build().map_err(|e| CodecError::Registry {
            detail: e.to_string(),
        })?;
        Ok(self.with_registry_settings(url, settings))
    }

    /// The embedded codec with the registry `config` names (and its credentials), if any: what
    /// the processor and the tools decode and encode with.
    ///
    /// # Errors
    /// A compiled-in schema that does not parse, or a registry client that cannot be built.
    pub fn configured(config: &crate::config::Config) -> Result<Codec, CodecError> {
        let codec = Codec::embedded()?;
        match config
            .registry()
            .map_err(|detail| CodecError::Registry { detail })?
        {
            Some((url, auth)) => codec.with_registry_auth(&url, &auth),
            None => Ok(codec),
        }
    }

    /// Adds a schema registry with full settings (several URLs, auth, headers, timeout); `url`
    /// names it in messages, so it must not carry credentials.
    pub fn with_registry_settings(mut self, url: &str, settings: SrSettings) -> Codec {
        self.registry = Some(confluent::Registry::new(
            url.trim_end_matches('/'),
            settings,
        ));
        self
    }

    /// The start-up check of the configured registry (`confluent`'s module doc): run by the
    /// processor and the tools before their first record. [`RegistryCheck::NoRegistry`]
    /// without one.
    ///
    /// # Errors
    /// [`RegistryCheckError`]: the registry refuses the credentials, or the URL does not answer
    /// as a Confluent-API registry.
    pub async fn check_registry(&self) -> Result<RegistryCheck, RegistryCheckError> {
        match &self.registry {
            Some(r) => r.check().await,
            None => Ok(RegistryCheck::NoRegistry),
        }
    }

    /// Sets the largest payload [`Codec::decode`] accepts; larger ones fail with
    /// [`CodecError::Oversize`] before any decoding.
    pub fn with_max_payload(mut self, bytes: usize) -> Codec {
        self.max_payload = bytes;
        self
    }

    /// The largest payload accepted for decoding.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Accepts single-object payloads written with `schema_json` (a self-contained schema of
    /// one of our records, e.g. an older or newer version), resolving them to the reader schema.
    ///
    /// # Errors
    /// [`CodecError::Schema`] when the schema does not parse.
    pub fn with_writer_schema(mut self, schema_json: &str) -> Result<Codec, CodecError> {
        let writer = Arc::new(WriterSchema::new(schemas::parse_supplied(schema_json)?)?);
        self.known.insert(writer.fingerprint(), writer);
        Ok(self)
    }

    /// Reads the record named in `schema_json` with that schema instead of the compiled-in one
    /// (a consumer on a newer or older version). Its union branch order must match the model's.
    ///
    /// # Errors
    /// [`CodecError::Schema`] when the schema does not parse.
    pub fn with_reader_schema(mut self, schema_json: &str) -> Result<Codec, CodecError> {
        let reader = Arc::new(ReaderSchema::new(schemas::parse_supplied(schema_json)?)?);
        if let Some(own) = self.own.get(&reader.full_name) {
            if own.header != reader.header {
                self.direct_read.retain(|h| *h != own.header);
            }
        }
        self.readers.insert(reader.full_name.clone(), reader);
        Ok(self)
    }

    /// Decodes and encodes every Avro payload through apache-avro's `Value`, never a direct
    /// reader or writer: the reference they are tested and measured against.
    pub fn value_path_only(mut self) -> Codec {
        self.direct_read.clear();
        self.direct_write.clear();
        self
    }

    /// The self-contained JSON of the compiled-in schema of record `name` (e.g. `HiringEvent`),
    /// as registered with a registry.
    pub fn schema_json(&self, name: &str) -> Option<&str> {
        self.own.get(&full_name(name)).map(|w| w.json.as_str())
    }

    /// The 8-byte CRC-64-AVRO fingerprint (as it appears in single-object headers) of the
    /// compiled-in schema of record `name`.
    pub fn fingerprint(&self, name: &str) -> Option<[u8; 8]> {
        self.own.get(&full_name(name)).map(|w| w.fingerprint())
    }

    /// Decodes a single-object or JSON payload, without I/O.
    ///
    /// # Errors
    /// Any decode [`CodecError`]; Confluent bytes give [`CodecError::RegistryRequired`].
    pub fn decode_local<R: Record>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        match self.precheck(bytes)? {
            Framing::Json => json::decode(bytes),
            Framing::SingleObject => {
                if let Some(record) = self.read_direct(bytes) {
                    return Ok(record);
                }
                let value = single_object::decode(bytes, &self.known, self.reader::<R>()?)?;
                R::from_avro(value)
            }
            Framing::Confluent => Err(CodecError::RegistryRequired {
                schema_id: framing::confluent_id(bytes),
            }),
        }
    }

    /// Decodes a payload in any framing; Confluent payloads fetch their writer schema from the
    /// registry (once per schema id).
    ///
    /// # Errors
    /// Any decode [`CodecError`]; only [`CodecError::RegistryUnavailable`] is retryable.
    pub async fn decode<R: Record>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        if self.precheck(bytes)? != Framing::Confluent {
            return self.decode_local(bytes);
        }
        let registry = self.registry.as_ref().ok_or(CodecError::RegistryRequired {
            schema_id: framing::confluent_id(bytes),
        })?;
        let value = registry.decode(bytes, self.reader::<R>()?).await?;
        R::from_avro(value)
    }

    /// Encodes in the single-object or JSON framing, without I/O.
    ///
    /// # Errors
    /// [`CodecError::Encode`]/[`CodecError::Json`]; Confluent gives
    /// [`CodecError::RegistryRequired`] (use [`Codec::encode`]).
    pub fn encode_local<R: Record>(
        &self,
        record: &R,
        framing: Framing,
    ) -> Result<Vec<u8>, CodecError> {
        match framing {
            Framing::Json => json::encode(record),
            Framing::SingleObject => match self.write_direct(record) {
                Some(bytes) => Ok(bytes),
                None => single_object::encode(&record.to_avro()?, self.own::<R>()?),
            },
            Framing::Confluent => Err(CodecError::RegistryRequired { schema_id: None }),
        }
    }

    /// Encodes in any framing. Confluent registers the compiled-in schema under
    /// TopicNameStrategy (subject `<topic>-value`) and prefixes the id the registry returns.
    ///
    /// # Errors
    /// As [`Codec::encode_local`], plus the registry errors.
    pub async fn encode<R: Record>(
        &self,
        record: &R,
        framing: Framing,
        topic: &str,
    ) -> Result<Vec<u8>, CodecError> {
        if framing != Framing::Confluent {
            return self.encode_local(record, framing);
        }
        let registry = self
            .registry
            .as_ref()
            .ok_or(CodecError::RegistryRequired { schema_id: None })?;
        let content = match self.write_direct(record) {
            Some(mut payload) => {
                payload.drain(..SINGLE_OBJECT_HEADER_LEN);
                confluent::Content::Body(payload)
            }
            None => confluent::Content::Value(record.to_avro()?),
        };
        registry.encode(content, self.own::<R>()?, topic).await
    }

    /// `bytes` (single-object) read by `R`'s direct reader, when it has one for the writer
    /// schema and this codec reads `R` with that schema; `None`: take the generic path.
    fn read_direct<R: Record>(&self, bytes: &[u8]) -> Option<R> {
        let fingerprint = R::DIRECT_FINGERPRINT?;
        let (header, body) = bytes.split_first_chunk::<SINGLE_OBJECT_HEADER_LEN>()?;
        if header[2..] != fingerprint || !self.direct_read.contains(header) {
            return None;
        }
        R::read_direct(body)
    }

    /// The single-object payload of `record` under its compiled-in schema, written by `R`'s
    /// direct writer when it has one for that schema; `None`: take the `Value` path.
    fn write_direct<R: Record>(&self, record: &R) -> Option<Vec<u8>> {
        let fingerprint = R::DIRECT_FINGERPRINT?;
        let header = self.direct_write.iter().find(|h| h[2..] == fingerprint)?;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(header);
        record.write_direct(&mut out)?;
        Some(out)
    }

    /// Empty and oversize checks, then the framing.
    fn precheck(&self, bytes: &[u8]) -> Result<Framing, CodecError> {
        if bytes.len() > self.max_payload {
            return Err(CodecError::Oversize {
                len: bytes.len(),
                max: self.max_payload,
            });
        }
        detect(bytes)
    }

    fn reader<R: Record>(&self) -> Result<&ReaderSchema, CodecError> {
        let name = full_name(R::SCHEMA);
        self.readers
            .get(&name)
            .map(|r| r.as_ref())
            .ok_or(CodecError::Schema {
                name,
                detail: "no reader schema".to_string(),
            })
    }

    fn own<R: Record>(&self) -> Result<&WriterSchema, CodecError> {
        let name = full_name(R::SCHEMA);
        self.own
            .get(&name)
            .map(|w| w.as_ref())
            .ok_or(CodecError::Schema {
                name,
                detail: "no compiled-in schema".to_string(),
            })
    }
}
