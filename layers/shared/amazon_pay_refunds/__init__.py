"""amazon-pay-refunds: the shared library the Lambda functions import (packaged as a Lambda layer)."""
