//! proptest strategies the codec tests share (`mod strategies;` in each).
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::prelude::*;

use hirestate::model::FieldValue;

/// Every f64 but NaN (NaN != NaN; its bits are checked in the unit tests).
pub fn number() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

/// Any field value, its strings drawn from `text`.
pub fn field_value(text: BoxedStrategy<String>) -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        number().prop_map(FieldValue::Number),
        text.clone().prop_map(FieldValue::Text),
        vec(text, 0..4).prop_map(FieldValue::List),
    ]
}
