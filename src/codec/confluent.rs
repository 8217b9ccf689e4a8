//! Confluent wire format against any Confluent-API schema registry, through
//! `schema_registry_converter`: `0x00`, 4-byte big-endian schema id, Avro body.
//!
//! Decoding fetches the writer schema by id (`GET /schemas/ids/{id}?deleted=true`, cached by the
//! converter and, as a prebuilt reader, here) and resolves it against our reader schema, so a
//! producer on a newer or older compatible schema is read correctly. The converter's own
//! `decode` reads with the writer schema only, hence `AvroDecoder::get_schema` + our decode.
//!
//! (`AvroDecoder`/`AvroEncoder` are used directly, in an `Arc`, rather than the `easy`
//! wrappers, because only they expose `get_schema` and `remove_errors_from_cache`: the converter
//! caches non-retryable errors, and a registry 500 is transient for us.)
//!
//! Encoding registers our compiled-in schema under TopicNameStrategy (`<topic>-value`,
//! `POST /subjects/<topic>-value/versions`, which returns the existing id when already
//! registered; cached per subject by the converter) and frames our own Avro body with the id.
//!
//! Registry failures are classified once, in [`registry_error`]: transient (network, 5xx, 408,
//! 429) → [`CodecError::RegistryUnavailable`] (retryable); 401/403 →
//! [`CodecError::RegistryDenied`] (the credentials: the processor stops); 404 on an id →
//! [`CodecError::UnknownSchemaId`]; anything else → [`CodecError::Registry`].
//!
//! The start-up check ([`Registry::check`]) asks the registry for its subjects (`GET
//! /subjects`, which every Confluent-API registry serves) before the first record: a URL that
//! does not answer as a registry (a wrong path: 404 to everything) or credentials it refuses
//! are reported then, by the processor and the tools alike, instead of at the first record —
//! where a wrong URL looked like an unknown schema id in every record, a permanent decode
//! error that sent the whole stream to the DLQ. A registry out of reach is not refused: it may
//! come back, and what needs it waits for it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{get_all_subjects, SrSettings};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use super::framing::{confluent_id, CONFLUENT_HEADER_LEN, CONFLUENT_MAGIC};
use super::schemas::{ReaderSchema, WriterSchema};
use super::{CodecError, Framing};
use crate::config::REGISTRY_CREDENTIALS;

/// A handle on one schema registry: the converter's caches plus our prebuilt writer readers.
/// Cheap to clone; clones share caches.
#[derive(Clone)]
pub(crate) struct Registry {
    /// The registry's URL, as messages name it (without credentials).
    url: String,
    settings: SrSettings,
    decoder: Arc<AvroDecoder>,
    encoder: Arc<AvroEncoder>,
    /// Writer schemas by registry id, each with its datum reader built once.
    writers: Arc<RwLock<HashMap<u32, Arc<WriterSchema>>>>,
}

impl Registry {
    pub fn new(url: &str, settings: SrSettings) -> Self {
        Registry {
            url: url.to_owned(),
            decoder: Arc::new(AvroDecoder::new(settings.clone())),
            encoder: Arc::new(AvroEncoder::new(settings.clone())),
            settings,
            writers: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The start-up check (module doc): `Ok(Answered)` when the registry lists its subjects,
    /// `Ok(OutOfReach)` when it cannot be reached or answers that it is unavailable for now.
    ///
    /// # Errors
    /// [`RegistryCheckError`]: the registry refuses the credentials, or the URL does not answer
    /// as a Confluent-API registry.
    pub async fn check(&self) -> Result<RegistryCheck, RegistryCheckError> {
        let url = self.url.clone();
        let e = match get_all_subjects(&self.settings).await {
            Ok(subjects) => {
                return Ok(RegistryCheck::Answered {
                    url,
                    subjects: subjects.len(),
                })
            }
            Err(e) => e,
        };
        // (The converter's cause of an HTTP error is the body's `message`, or a note that the
        // body was no registry error, which says nothing more.)
        let detail = match &e.cause {
            Some(cause) if !cause.contains("couldn't parse") => format!("{}: {cause}", e.error),
            _ => e.error.clone(),
        };
        Err(match registry_error(&e, None) {
            CodecError::RegistryUnavailable { .. } => {
                return Ok(RegistryCheck::OutOfReach { url, detail })
            }
            CodecError::RegistryDenied { .. } => RegistryCheckError::Denied { url, detail },
            _ => RegistryCheckError::NotARegistry { url, detail },
        })
    }

    /// Decodes a Confluent payload (already detected as such) to a value of `reader`.
    pub async fn decode(&self, bytes: &[u8], reader: &ReaderSchema) -> Result<Value, CodecError> {
        let id = confluent_id(bytes).ok_or(CodecError::TruncatedHeader {
            framing: Framing::Confluent,
            got: bytes.len(),
            need: CONFLUENT_HEADER_LEN,
        })?;
        let writer = self.writer(id).await?;
        writer
            .decode(&bytes[CONFLUENT_HEADER_LEN..], reader)
            .map_err(|e| match e {
                CodecError::AvroBody { schema, problem } => CodecError::AvroBody {
                    schema: format!("{schema} (registry id {id})"),
                    problem,
                },
                other => other,
            })
    }

    async fn writer(&self, id: u32) -> Result<Arc<WriterSchema>, CodecError> {
        if let Some(w) = self.cached(id) {
            return Ok(w);
        }
        let fetched = self.decoder.get_schema(id).await.map_err(|e| {
            let err = registry_error(&e, Some(id));
            if err.retryable() && e.cached {
                // The converter caches non-retryable errors; a 500 is transient for us.
                self.decoder.remove_errors_from_cache();
            }
            err
        })?;
        let writer = Arc::new(WriterSchema::new(fetched.parsed.clone())?);
        if let Ok(mut cache) = self.writers.write() {
            cache.insert(id, writer.clone());
        }
        Ok(writer)
    }

    fn cached(&self, id: u32) -> Option<Arc<WriterSchema>> {
        // A poisoned lock only means another task panicked mid-insert; the map is still valid.
        match self.writers.read() {
            Ok(g) => g.get(&id).cloned(),
            Err(p) => p.into_inner().get(&id).cloned(),
        }
    }

    /// Encodes `content` under `own` (our compiled-in schema), registered for `<topic>-value`.
    pub async fn encode(
        &self,
        content: Content,
        own: &WriterSchema,
        topic: &str,
    ) -> Result<Vec<u8>, CodecError> {
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_string(),
            false,
            SuppliedSchema::new(
                Some(own.full_name.clone()),
                SchemaType::Avro,
                own.json.clone(),
            ),
        );
        let subject = format!("{topic}-value");
        let registered = self
            .encoder
            .get_schema_and_id(&subject, strategy)
            .await
            .map_err(|e| {
                let err = registry_error(&e, None);
                if err.retryable() && e.cached {
                    self.encoder.remove_errors_from_cache();
                }
                err
            })?;
        let body = match content {
            Content::Body(body) => body,
            Content::Value(value) => own.encode(&value)?,
        };
        let mut out = Vec::with_capacity(CONFLUENT_HEADER_LEN + body.len());
        out.push(CONFLUENT_MAGIC);
        out.extend_from_slice(&registered.id.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// What a record is encoded from: its body already written (by a direct writer), or its
/// `Value`, written once the schema is registered.
pub(crate) enum Content {
    Body(Vec<u8>),
    Value(Value),
}

/// What the start-up check found (see [`Registry::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryCheck {
    /// No registry is configured.
    NoRegistry,
    /// The registry answered with its subject list.
    Answered { url: String, subjects: usize },
    /// It could not be reached, or answered that it is unavailable for now.
    OutOfReach { url: String, detail: String },
}

impl RegistryCheck {
    /// Logs what the check found (nothing without a registry).
    pub fn log(&self) {
        match self {
            RegistryCheck::NoRegistry => {}
            RegistryCheck::Answered { url, subjects } => {
                tracing::info!(url = %url, subjects, "schema registry answers");
            }
            RegistryCheck::OutOfReach { url, detail } => tracing::warn!(
                url = %url,
                error = %detail,
                "schema registry out of reach at start-up; going on: what needs it waits for it"
            ),
        }
    }
}

/// A registry the start-up check refuses: nothing could be decoded or encoded through it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryCheckError {
    #[error(
        "the schema registry at {url} refuses hirestate's credentials (GET {url}/subjects: \
         {detail}): check them and their rights; they are set in {REGISTRY_CREDENTIALS}"
    )]
    Denied { url: String, detail: String },
    #[error(
        "{url} does not answer as a Confluent-API schema registry (GET {url}/subjects: \
         {detail}): HIRESTATE_SCHEMA_REGISTRY (schema_registry in the file) must be the \
         registry's base URL, the one its /subjects and /schemas/ids/{{id}} are under"
    )]
    NotARegistry { url: String, detail: String },
}

/// Classifies a converter error (see the module docs).
fn registry_error(e: &SRCError, id: Option<u32>) -> CodecError {
    let detail = e.to_string();
    let transient = e.retriable
        || ["status 5", "status 408", "status 429"]
            .iter()
            .any(|s| e.error.contains(s));
    if transient {
        return CodecError::RegistryUnavailable { detail };
    }
    if ["status 401", "status 403"]
        .iter()
        .any(|s| e.error.contains(s))
    {
        return CodecError::RegistryDenied { detail };
    }
    match id {
        Some(id) if e.error.contains("status 404") => CodecError::UnknownSchemaId { id, detail },
        _ => CodecError::Registry { detail },
    }
}
