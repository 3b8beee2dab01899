//! Generated code for the gd-customs v1 gRPC API, one module per package, and the
//! file descriptor set that gRPC reflection serves.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod convert;

pub mod customs {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("customs.common.v1");
        }
    }
    pub mod declaration {
        pub mod v1 {
            tonic::include_proto!("customs.declaration.v1");
        }
    }
    pub mod risk {
        pub mod v1 {
            tonic::include_proto!("customs.risk.v1");
        }
    }
    pub mod review {
        pub mod v1 {
            tonic::include_proto!("customs.review.v1");
        }
    }
    pub mod field {
        pub mod v1 {
            tonic::include_proto!("customs.field.v1");
        }
    }
}

pub use customs::{common::v1 as common, declaration::v1 as declaration, field::v1 as field};
pub use customs::{review::v1 as review, risk::v1 as risk};

/// The encoded `FileDescriptorSet` of every v1 package, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("customs_descriptor");

/// The fully-qualified names of every v1 service, as health and reflection report them.
pub const SERVICE_NAMES: &[&str] = &[
    "customs.declaration.v1.EnterpriseService",
    "customs.declaration.v1.ManifestService",
    "customs.declaration.v1.DeclarationService",
    "customs.risk.v1.RiskService",
    "customs.risk.v1.ControlInstructionService",
    "customs.risk.v1.RiskParameterService",
    "customs.review.v1.RoutingService",
    "customs.review.v1.ReviewService",
    "customs.review.v1.PostReviewService",
    "customs.review.v1.RulingService",
    "customs.field.v1.TaxService",
    "customs.field.v1.GuaranteeService",
    "customs.field.v1.InspectionService",
    "customs.field.v1.TransportService",
    "customs.field.v1.GateService",
];
