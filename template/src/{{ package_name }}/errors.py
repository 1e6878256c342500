"""Errors a user can fix, each reported as one line naming the file or setting at fault."""


class ProjectError(Exception):
    """Base of every error the command line reports without a traceback."""


class ContractError(ProjectError, ValueError):
    """The contract file is missing, unreadable or breaks one of its own rules."""


class RawDataError(ProjectError):
    """Raw data is missing, unreadable, or would be overwritten with something else."""


class ModelFileError(ProjectError):
    """The model file is missing, unreadable, or was built for another contract."""


class BaselineError(ProjectError):
    """A baseline rule cannot be applied: it reads a column the data lacks, or is malformed."""
