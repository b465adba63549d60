//! Listener certificates → Kong certificates with SNIs.
//!
//! STUB: to be written.

use super::TranslateInput;
use super::kong;

pub fn translate(_input: &TranslateInput<'_>) -> Vec<kong::Certificate> {
    Vec::new()
}
