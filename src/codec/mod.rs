//! bytes ⇄ records. (Being written.)
