# Build settings for the Lambda zips (sourced by build-lambdas.sh and
# sam-build.sh; the host builds for tests keep the defaults).
#
# TLS in the AWS SDK is rustls on aws-lc. AWS_LC_SYS_SMALL builds aws-lc with
# OPENSSL_SMALL: without its large precomputed tables and unrolled code, for
# a little more CPU in each TLS handshake (one per connection; a warm
# function keeps its connections).
export AWS_LC_SYS_SMALL="${AWS_LC_SYS_SMALL:-1}"
