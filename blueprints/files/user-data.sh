#!/bin/bash
# Bootstrap of one app instance (Amazon Linux 2023): packages; the instance files, written by
# cfn-init from the launch template's AWS::CloudFormation::Init metadata (nginx site, gunicorn
# settings, systemd unit, app environment, CloudWatch agent config); the CloudWatch agent; the
# release artifact in a virtual environment; the database migration; gunicorn and nginx.
# The compute blueprint renders this file through Fn::Sub, so every dollar-brace reference is a
# template value (AWS::Region, AWS::StackName or a variable the blueprint passes); write a shell
# expansion as $name, or with braces and a '!' after the brace.
# The instance runs this in Pending:Wait, held by the group's launch lifecycle hook: nothing sends
# it traffic or judges its health until the script completes the hook. Every wait goes through
# 'retry' with numbers the blueprint renders from its BOOTSTRAP_WAITS, the same numbers the hook's
# timeout is derived from. Any failure signals CloudFormation and abandons the hook (Auto Scaling
# then replaces the instance) at once, naming the step; success completes the hook, so the
# instance goes in service, and is signalled last, only once /health answers 200 through nginx.
# Instance files ${InstanceFilesDigest}: a change to any of them changes this script, so a deploy
# rolls the instances.
set -euo pipefail
set -o errtrace
exec > >(tee -a /var/log/cfnbuild-bootstrap.log | logger -t bootstrap -s 2>/dev/console) 2>&1
STEP="starting"
HOOK="pending"
trap '/opt/aws/bin/cfn-signal -e 1 --reason "bootstrap failed at line $LINENO ($STEP); see /var/log/cfnbuild-bootstrap.log" --stack "${AWS::StackName}" --resource "${SignalResource}" --region "${AWS::Region}" || true; complete_launch ABANDON' ERR

# Say what is being done: a failure signal names it.
step() { STEP="$1"; echo "bootstrap: $1"; }
# Stop with a reason of our own: the call fails, so the ERR trap signals it.
fail() { STEP="$1"; return 1; }

# retry ATTEMPTS SECONDS PAUSE COMMAND...: COMMAND at most ATTEMPTS times, each one stopped after
# SECONDS (killed ${TimeoutKillSeconds} s later if it ignores that), PAUSE seconds apart. The only
# place this script waits.
retry() {
  local attempts="$1" seconds="$2" pause="$3" attempt
  shift 3
  for attempt in $(seq 1 "$attempts"); do
    if timeout --kill-after="${TimeoutKillSeconds}" "$seconds" "$@"; then
      return 0
    fi
    echo "bootstrap: $1 failed or took over $seconds s (attempt $attempt of $attempts)" >&2
    if [ "$attempt" -lt "$attempts" ]; then sleep "$pause"; fi
  done
  return 1
}

# complete_launch CONTINUE|ABANDON: end the launch lifecycle hook, once. CONTINUE puts the
# instance in service (registered with the target group, health checks from then on); ABANDON has
# Auto Scaling terminate it and launch another. The instance's id comes from IMDSv2, its group's
# name from the aws:autoscaling:groupName tag Auto Scaling puts on it (the template cannot pass
# the name: the group is made after this launch template). If this fails, the hook's timeout
# abandons the instance.
complete_launch() {
  local result="$1" token instance group
  [ "$HOOK" = pending ] || return 0
  HOOK="$result"
  token="$(retry "${ImdsAttempts}" "${ImdsSeconds}" "${ImdsPauseSeconds}" curl -fsS -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300" http://169.254.169.254/latest/api/token)" || return 1
  instance="$(retry "${ImdsAttempts}" "${ImdsSeconds}" "${ImdsPauseSeconds}" curl -fsS \
    -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id)" || return 1
  group="$(retry "${GroupNameAttempts}" "${GroupNameSeconds}" "${GroupNamePauseSeconds}" aws ec2 describe-tags \
    --region "${AWS::Region}" --filters "Name=resource-id,Values=$instance" "Name=key,Values=aws:autoscaling:groupName" \
    --query 'Tags[0].Value' --output text)" || return 1
  if [ -z "$group" ] || [ "$group" = None ]; then
    echo "bootstrap: $instance has no aws:autoscaling:groupName tag; the launch hook is left to time out" >&2
    return 1
  fi
  echo "bootstrap: completing the launch lifecycle hook of $instance in $group with $result"
  retry "${CompleteHookAttempts}" "${CompleteHookSeconds}" "${CompleteHookPauseSeconds}" aws autoscaling \
    complete-lifecycle-action --region "${AWS::Region}" --lifecycle-hook-name "${LifecycleHookName}" \
    --auto-scaling-group-name "$group" --instance-id "$instance" --lifecycle-action-result "$result"
}

APP_HOME="${AppHome}"
ARTIFACT_KEY="${ArtifactKey}"
# AppArtifactBucket when given (a Service Catalog product: where the export staged the release),
# else the stack's own assets bucket (where 'cfnbuild deploy' uploads it).
ARTIFACT_BUCKET="${ArtifactBucket}"

step "installing the CloudFormation helper scripts"
retry "${HelperScriptsAttempts}" "${HelperScriptsSeconds}" "${HelperScriptsPauseSeconds}" dnf install -y aws-cfn-bootstrap

# The parameter is filled by the deploy command after it uploads the artifact (or is the default
# of a Service Catalog product); a stack deployed any other way has no release to run, and
# waiting out the signal timeout would say nothing.
if [ -z "$ARTIFACT_KEY" ]; then
  fail "AppArtifactKey is empty, so there is no release to install: deploy with 'cfnbuild deploy', which uploads the app artifact and sets it (or launch a product 'cfnbuild export --service-catalog --upload' staged)"
fi

step "installing nginx, Python 3.11 and the CloudWatch agent"
retry "${PackagesAttempts}" "${PackagesSeconds}" "${PackagesPauseSeconds}" \
  dnf install -y nginx python3.11 python3.11-pip amazon-cloudwatch-agent

step "creating the webapp user"
id -u webapp >/dev/null 2>&1 || useradd --system --no-create-home --home-dir "$APP_HOME" --shell /sbin/nologin webapp
# nginx connects to gunicorn's socket (mode 0770) as a member of the webapp group.
usermod -a -G webapp nginx
install -d -m 0755 -o root -g root "$APP_HOME" /etc/webapp
install -d -m 0750 -o root -g root "${AppLogDir}"

step "writing the instance files (cfn-init)"
retry "${InstanceFilesAttempts}" "${InstanceFilesSeconds}" "${InstanceFilesPauseSeconds}" \
  /opt/aws/bin/cfn-init -v --stack "${AWS::StackName}" --resource "${InitResource}" --region "${AWS::Region}"

# Started before the app so that whatever fails from here on is in CloudWatch too.
step "starting the CloudWatch agent"
retry "${AgentAttempts}" "${AgentSeconds}" "${AgentPauseSeconds}" \
  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json

# The cluster requires TLS; the app verifies the server against AWS's RDS certificate bundle.
step "fetching the RDS certificate bundle"
retry "${CaBundleAttempts}" "${CaBundleSeconds}" "${CaBundlePauseSeconds}" curl -fsS -o /etc/webapp/rds-ca.pem \
  https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
chmod 0644 /etc/webapp/rds-ca.pem

# On a stack's first deploy this stack creates the assets bucket, so the deploy command can upload
# the release only once the bucket exists: wait for it, bounded, rather than fail at once.
step "fetching the release s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY"
retry "${ReleaseAttempts}" "${ReleaseSeconds}" "${ReleasePauseSeconds}" \
  aws s3 cp --only-show-errors --region "${AWS::Region}" "s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY" "$APP_HOME/app.tar.gz" ||
  fail "the release s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY could not be fetched in ${ReleaseAttempts} attempts"
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
retry "${VenvAttempts}" "${VenvSeconds}" "${VenvPauseSeconds}" \
  "$APP_HOME/venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check --no-input \
  --only-binary=:all: -r "$release/requirements.txt" "$release"/*.whl

# Every instance runs it: 'migrate' holds a MySQL advisory lock, so the first one upgrades and the
# others find the schema current. Retried (bounded) while the cluster is still coming up; systemd
# stops the migration itself at the same bound (stopping systemd-run would leave the unit running).
step "migrating the database"
retry "${MigrateAttempts}" "${MigrateSeconds}" "${MigratePauseSeconds}" \
  systemd-run --quiet --wait --pipe --collect --uid=webapp --gid=webapp --property=RuntimeMaxSec="${MigrateSeconds}" \
  --property=EnvironmentFile=/etc/webapp/app.env "$APP_HOME/venv/bin/python" -m flask_app migrate ||
  fail "the database migration failed ${MigrateAttempts} times; see the app log"

step "starting gunicorn (webapp.service) and nginx"
systemctl daemon-reload
systemctl enable webapp.service nginx.service
retry "${ServiceStartAttempts}" "${ServiceStartSeconds}" "${ServiceStartPauseSeconds}" systemctl restart webapp.service
nginx -t
retry "${ServiceStartAttempts}" "${ServiceStartSeconds}" "${ServiceStartPauseSeconds}" systemctl restart nginx.service

step "waiting for /health to answer 200 through nginx"
retry "${HealthAttempts}" "${HealthSeconds}" "${HealthPauseSeconds}" \
  curl -fsS -o /dev/null "http://127.0.0.1:${HttpPort}/health" ||
  fail "/health did not answer 200 through nginx in ${HealthAttempts} attempts; curl's errors are in the log"

# In service before the signal: CloudFormation counts a success signal as soon as it arrives (the
# group is created, or a rolling update replaces its next batch), and an instance still held by
# the hook is not yet registered with the target group.
step "completing the launch lifecycle hook: the instance goes in service"
complete_launch CONTINUE || fail "the launch lifecycle hook could not be completed; Auto Scaling abandons the instance at its timeout"

# Outside a stack operation (a scale-out, a replaced instance) nothing waits for the signal, and
# CloudFormation refuses it: that is no failure of the bootstrap.
step "signalling success"
/opt/aws/bin/cfn-signal -e 0 --reason "bootstrap complete: /health answers 200 through nginx" --stack "${AWS::StackName}" --resource "${SignalResource}" --region "${AWS::Region}" || echo "bootstrap: the success signal was not accepted (no stack operation waits for it); the instance is in service"
