//! Job error codes (`jobs.error_code`, jobs.md §13; append-only) and whether each is retried.

use std::fmt;

/// Why a job run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobErrorCode {
    JobTimeout,
    AnsibleTimeout,
    AnsiblePlayError,
    AnsibleHostFailed,
    AnsibleHostUnreachable,
    AnsibleSyntaxError,
    AnsibleUnexpectedError,
    AnsibleUnknownExit,
    WorkerLost,
    PreconditionFailed,
    HealthCheckFailed,
    DnsMismatch,
    DriftDetected,
    BackupChecksumMismatch,
    ArchiveInvalid,
    SourceFetchFailed,
    BackupStorageUnreachable,
    DrillFailed,
    CertificateFailed,
}

impl JobErrorCode {
    pub const ALL: [JobErrorCode; 19] = [
        Self::JobTimeout,
        Self::AnsibleTimeout,
        Self::AnsiblePlayError,
        Self::AnsibleHostFailed,
        Self::AnsibleHostUnreachable,
        Self::AnsibleSyntaxError,
        Self::AnsibleUnexpectedError,
        Self::AnsibleUnknownExit,
        Self::WorkerLost,
        Self::PreconditionFailed,
        Self::HealthCheckFailed,
        Self::DnsMismatch,
        Self::DriftDetected,
        Self::BackupChecksumMismatch,
        Self::ArchiveInvalid,
        Self::SourceFetchFailed,
        Self::BackupStorageUnreachable,
        Self::DrillFailed,
        Self::CertificateFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobTimeout => "JOB_TIMEOUT",
            Self::AnsibleTimeout => "ANSIBLE_TIMEOUT",
            Self::AnsiblePlayError => "ANSIBLE_PLAY_ERROR",
            Self::AnsibleHostFailed => "ANSIBLE_HOST_FAILED",
            Self::AnsibleHostUnreachable => "ANSIBLE_HOST_UNREACHABLE",
            Self::AnsibleSyntaxError => "ANSIBLE_SYNTAX_ERROR",
            Self::AnsibleUnexpectedError => "ANSIBLE_UNEXPECTED_ERROR",
            Self::AnsibleUnknownExit => "ANSIBLE_UNKNOWN_EXIT",
            Self::WorkerLost => "WORKER_LOST",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::HealthCheckFailed => "HEALTH_CHECK_FAILED",
            Self::DnsMismatch => "DNS_MISMATCH",
            Self::DriftDetected => "DRIFT_DETECTED",
            Self::BackupChecksumMismatch => "BACKUP_CHECKSUM_MISMATCH",
            Self::ArchiveInvalid => "ARCHIVE_INVALID",
            Self::SourceFetchFailed => "SOURCE_FETCH_FAILED",
            Self::BackupStorageUnreachable => "BACKUP_STORAGE_UNREACHABLE",
            Self::DrillFailed => "DRILL_FAILED",
            Self::CertificateFailed => "CERTIFICATE_FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<JobErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Retryable codes requeue the job while attempts remain.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::AnsibleTimeout
                | Self::AnsiblePlayError
                | Self::AnsibleHostFailed
                | Self::AnsibleHostUnreachable
                | Self::WorkerLost
                | Self::DnsMismatch
                | Self::SourceFetchFailed
                | Self::BackupStorageUnreachable
                | Self::CertificateFailed
        )
    }

    /// Codes a playbook raises only before any live change (jobs.md §7): existing resources
    /// return to their pre-job status instead of `failed`.
    pub fn pre_mutation(self) -> bool {
        matches!(
            self,
            Self::PreconditionFailed
                | Self::DriftDetected
                | Self::BackupChecksumMismatch
                | Self::ArchiveInvalid
                | Self::SourceFetchFailed
        )
    }
}

impl fmt::Display for JobErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_retryability_matches_the_registry() {
        for c in JobErrorCode::ALL {
            assert_eq!(JobErrorCode::parse(c.as_str()), Some(c));
        }
        let retryable: Vec<_> = JobErrorCode::ALL
            .iter()
            .filter(|c| c.retryable())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            retryable,
            [
                "ANSIBLE_TIMEOUT",
                "ANSIBLE_PLAY_ERROR",
                "ANSIBLE_HOST_FAILED",
                "ANSIBLE_HOST_UNREACHABLE",
                "WORKER_LOST",
                "DNS_MISMATCH",
                "SOURCE_FETCH_FAILED",
                "BACKUP_STORAGE_UNREACHABLE",
                "CERTIFICATE_FAILED"
            ]
        );
    }
}
