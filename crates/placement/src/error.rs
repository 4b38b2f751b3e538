//! The one error type of the crate: everything that can be wrong with the placement
//! parameters a caller hands in. Messages follow AWS's wording so the ECS handlers can
//! pass them through as `InvalidParameterException` messages.

/// Invalid placement constraints, strategies or cluster query expressions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The expression does not follow the cluster query language.
    #[error("Invalid expression at character {position}: {message}")]
    InvalidExpression {
        /// 1-based character offset of the problem (one past the end when input ran out).
        position: usize,
        /// What was expected there.
        message: String,
    },
    /// The expression is longer than ECS allows.
    #[error(
        "Invalid expression: expressions can be at most {max} characters long, this one has {len}."
    )]
    ExpressionTooLong {
        /// Characters in the expression.
        len: usize,
        /// The limit (2000).
        max: usize,
    },
    /// A constraint type other than `distinctInstance` or `memberOf`.
    #[error(
        "Invalid placement constraint type '{0}'. Valid types are distinctInstance and memberOf."
    )]
    UnknownConstraintType(String),
    /// `distinctInstance` was given an expression.
    #[error("The distinctInstance placement constraint does not take an expression.")]
    UnexpectedExpression,
    /// `memberOf` without an expression.
    #[error("The memberOf placement constraint requires an expression.")]
    MissingExpression,
    /// A strategy type other than `binpack`, `spread` or `random`.
    #[error("Invalid placement strategy type '{0}'. Valid types are binpack, spread and random.")]
    UnknownStrategyType(String),
    /// A `binpack` field other than `cpu` or `memory`.
    #[error(
        "Invalid field '{0}' for the binpack placement strategy. The field must be cpu or memory."
    )]
    InvalidBinpackField(String),
    /// A `spread` field other than `instanceId`, `host` or `attribute:<name>`.
    #[error("Invalid field '{0}' for the spread placement strategy. The field must be instanceId, host or attribute:<name>.")]
    InvalidSpreadField(String),
    /// `binpack` or `spread` without a field.
    #[error("The {0} placement strategy requires a field.")]
    MissingField(&'static str),
    /// `random` was given a field.
    #[error("The random placement strategy does not take a field.")]
    UnexpectedField,
}
