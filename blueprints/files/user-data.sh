#!/bin/bash
# Bootstrap of one app instance (a placeholder: the real one installs nginx, gunicorn, the app and
# the CloudWatch agent). The compute blueprint renders this file through Fn::Sub, so every
# dollar-brace reference is a template value (AWS::Region, AWS::StackName or a variable the
# blueprint passes); write a shell expansion as $name, or with braces and a '!' after the brace.
# Any failure signals the Auto Scaling group at once; success is signalled last.
set -euo pipefail
set -o errtrace
exec > >(tee -a /var/log/cfnbuild-bootstrap.log | logger -t bootstrap -s 2>/dev/console) 2>&1
trap '/opt/aws/bin/cfn-signal -e 1 --reason "bootstrap failed at line $LINENO; see /var/log/cfnbuild-bootstrap.log" --stack "${AWS::StackName}" --resource "${SignalResource}" --region "${AWS::Region}"' ERR

dnf install -y aws-cfn-bootstrap

install -d -m 0755 /etc/webapp
cat > /etc/webapp/app.env <<'ENV'
AWS_REGION=${AWS::Region}
AWS_DEFAULT_REGION=${AWS::Region}
APP_DB_SECRET_ARN=${DbSecretArn}
APP_ASSETS_BUCKET=${AssetsBucket}
APP_ASSETS_PREFIX=${UploadsPrefix}
ENV
cat > /etc/webapp/bootstrap.env <<'ENV'
ARTIFACTS=s3://${AssetsBucket}/${ArtifactPrefix}
METRICS_NAMESPACE=${MetricsNamespace}
LOG_GROUP_APP=${AppLogGroup}
LOG_GROUP_NGINX_ACCESS=${NginxAccessLogGroup}
LOG_GROUP_NGINX_ERROR=${NginxErrorLogGroup}
LOG_GROUP_BOOTSTRAP=${BootstrapLogGroup}
ENV

/opt/aws/bin/cfn-signal -e 0 --reason "bootstrap complete" --stack "${AWS::StackName}" --resource "${SignalResource}" --region "${AWS::Region}"
