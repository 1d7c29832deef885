#!/bin/bash
# Bootstrap of one app instance (Amazon Linux 2023): packages; the instance files, written by
# cfn-init from the launch template's AWS::CloudFormation::Init metadata (nginx site, gunicorn
# settings, systemd unit, app environment, CloudWatch agent config); the CloudWatch agent; the
# release artifact in a virtual environment; the database migration; gunicorn and nginx.
# The compute blueprint renders this file through Fn::Sub, so every dollar-brace reference is a
# template value (AWS::Region, AWS::StackName or a variable the blueprint passes); write a shell
# expansion as $name, or with braces and a '!' after the brace.
# Any failure signals the Auto Scaling group at once, naming the step; success is signalled last,
# only once /health answers 200 through nginx.
# Instance files ${InstanceFilesDigest}: a change to any of them changes this script, so a deploy
# rolls the instances.
set -euo pipefail
set -o errtrace
exec > >(tee -a /var/log/cfnbuild-bootstrap.log | logger -t bootstrap -s 2>/dev/console) 2>&1
STEP="starting"
trap '/opt/aws/bin/cfn-signal -e 1 --reason "bootstrap failed at line $LINENO ($STEP); see /var/log/cfnbuild-bootstrap.log" --stack "${AWS::StackName}" --resource "${SignalResource}" --region "${AWS::Region}"' ERR

# Say what is being done: a failure signal names it.
step() { STEP="$1"; echo "bootstrap: $1"; }
# Stop with a reason of our own: the call fails, so the ERR trap signals it.
fail() { STEP="$1"; return 1; }

APP_HOME="${AppHome}"
ARTIFACT_KEY="${ArtifactKey}"
# AppArtifactBucket when given (a Service Catalog product: where the export staged the release),
# else the stack's own assets bucket (where 'cfnbuild deploy' uploads it).
ARTIFACT_BUCKET="${ArtifactBucket}"

step "installing the CloudFormation helper scripts"
dnf install -y aws-cfn-bootstrap

# The parameter is filled by the deploy command after it uploads the artifact (or is the default
# of a Service Catalog product); a stack deployed any other way has no release to run, and
# waiting out the signal timeout would say nothing.
if [ -z "$ARTIFACT_KEY" ]; then
  fail "AppArtifactKey is empty, so there is no release to install: deploy with 'cfnbuild deploy', which uploads the app artifact and sets it (or launch a product 'cfnbuild export --service-catalog --upload' staged)"
fi

step "installing nginx, Python 3.11 and the CloudWatch agent"
dnf install -y nginx python3.11 python3.11-pip amazon-cloudwatch-agent

step "creating the webapp user"
id -u webapp >/dev/null 2>&1 || useradd --system --no-create-home --home-dir "$APP_HOME" --shell /sbin/nologin webapp
# nginx connects to gunicorn's socket (mode 0770) as a member of the webapp group.
usermod -a -G webapp nginx
install -d -m 0755 -o root -g root "$APP_HOME" /etc/webapp
install -d -m 0750 -o root -g root "${AppLogDir}"

step "writing the instance files (cfn-init)"
/opt/aws/bin/cfn-init -v --stack "${AWS::StackName}" --resource "${InitResource}" --region "${AWS::Region}"

# Started before the app so that whatever fails from here on is in CloudWatch too.
step "starting the CloudWatch agent"
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json

# The cluster requires TLS; the app verifies the server against AWS's RDS certificate bundle.
step "fetching the RDS certificate bundle"
curl -fsS --retry 5 --retry-connrefused --max-time 30 -o /etc/webapp/rds-ca.pem \
  https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
chmod 0644 /etc/webapp/rds-ca.pem

# On a stack's first deploy this stack creates the assets bucket, so the deploy command can upload
# the release only once the bucket exists: wait for it, bounded, rather than fail at once.
step "fetching the release s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY"
fetched=no
for attempt in $(seq 1 32); do
  if aws s3 cp --only-show-errors --region "${AWS::Region}" "s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY" "$APP_HOME/app.tar.gz"; then
    fetched=yes
    break
  fi
  echo "bootstrap: no release yet (attempt $attempt of 32); retrying in 15 s"
  sleep 15
done
[ "$fetched" = yes ] || fail "the release s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY could not be fetched in 8 minutes"
# The key names the artifact's sha256: what was fetched is what was built.
digest="$(sha256sum "$APP_HOME/app.tar.gz" | cut -c1-16)"
case "$ARTIFACT_KEY" in
  */"$digest"/*) ;;
  *) fail "the release's sha256 begins $digest, which its key $ARTIFACT_KEY does not name" ;;
esac
release="$APP_HOME/release"
rm -rf "$release"
install -d -m 0755 "$release"
tar -xzf "$APP_HOME/app.tar.gz" -C "$release" --no-same-owner

# Wheels only: nothing is compiled on the instance, and the versions are the artifact's pins.
step "installing the release into $APP_HOME/venv"
rm -rf "$APP_HOME/venv"
python3.11 -m venv "$APP_HOME/venv"
"$APP_HOME/venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check --no-input \
  --only-binary=:all: -r "$release/requirements.txt" "$release"/*.whl

# Every instance runs it: 'migrate' holds a MySQL advisory lock, so the first one upgrades and the
# others find the schema current. Retried (bounded) while the cluster is still coming up.
step "migrating the database"
migrated=no
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if systemd-run --quiet --wait --pipe --collect --uid=webapp --gid=webapp \
    --property=EnvironmentFile=/etc/webapp/app.env "$APP_HOME/venv/bin/python" -m flask_app migrate; then
    migrated=yes
    break
  fi
  echo "bootstrap: migration attempt $attempt of 10 failed; retrying in 15 s"
  sleep 15
done
[ "$migrated" = yes ] || fail "the database migration failed 10 times; see the app log"

step "starting gunicorn (webapp.service) and nginx"
systemctl daemon-reload
systemctl enable webapp.service nginx.service
systemctl restart webapp.service
nginx -t
systemctl restart nginx.service

step "waiting for /health to answer 200 through nginx"
healthy=no
code=none
for attempt in $(seq 1 30); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:${HttpPort}/health" || true)"
  if [ "$code" = 200 ]; then
    healthy=yes
    break
  fi
  echo "bootstrap: /health answered $code (attempt $attempt of 30)"
  sleep 2
done
[ "$healthy" = yes ] || fail "/health did not answer 200 through nginx in 30 attempts (last: $code)"

step "signalling success"
/opt/aws/bin/cfn-signal -e 0 --reason "bootstrap complete: /health answers 200 through nginx" --stack "${AWS::StackName}" --resource "${SignalResource}" --region "${AWS::Region}"
