/**
 * What a user meets when an EC2 call fails, turned into one line that says what was wrong and
 * what to do. The SDK's exceptions carry the EC2 error code in `name`; anything unknown keeps
 * its code and message.
 */

/** A launcher failure with a message meant for the person at the terminal. */
export class Ec2LaunchError extends Error {
  override readonly name = 'Ec2LaunchError';
  constructor(
    message: string,
    /** The EC2 (or SDK) error code, e.g. `InvalidAMIID.NotFound`; `Config` for bad settings. */
    readonly code: string,
  ) {
    super(message);
  }
}

/** A malformed launcher setting: its field in Ec2LauncherConfig (`securityGroupIds.0`), the value, what is expected. */
export class Ec2ConfigError extends Ec2LaunchError {
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly detail: string,
  ) {
    super(`invalid ${field}: ${detail}`, 'Config');
  }
}

/** The paxos-aws flag that gives each launcher setting. */
const SETTING_FLAGS: Readonly<Record<string, string>> = {
  cluster: '--cluster',
  region: '--region',
  imageId: '--ami',
  instanceType: '--instance-type',
  subnetId: '--subnet',
  availabilityZone: '--availability-zone',
  securityGroupIds: '--security-group',
  instanceProfile: '--instance-profile',
  keyName: '--key-name',
  archiveBucket: '--s3-bucket',
  concurrency: '--concurrency',
};

/**
 * A bad setting as the person at the terminal gave it: a UsageError (exit 2) naming the flag,
 * e.g. `--ami must be ami- followed by 8 or 17 hex digits, got "ubuntu"`, not the setting's
 * field; any other launcher setting error as a UsageError too; anything else unchanged.
 */
export function asFlagError(err: unknown): unknown {
  if (err instanceof Ec2ConfigError) {
    const flag = SETTING_FLAGS[err.field.split('.')[0] ?? ''];
    if (flag === undefined) return new UsageError(err.message);
    const expected = err.detail.includes(': expected ')
      ? err.detail.slice(err.detail.indexOf(': expected ') + ': expected '.length)
      : err.detail;
    return new UsageError(`${flag} must be ${expected}, got ${JSON.stringify(err.value)}`);
  }
  if (err instanceof Ec2LaunchError && err.code === 'Config') return new UsageError(err.message);
  return err;
}

const THROTTLING = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
]);

const TRANSIENT = new Set([
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
  'TimeoutError',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
]);

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

function codeOf(err: unknown): string {
  const e = err as AwsLikeError;
  return e?.name && e.name !== 'Error' ? e.name : (e?.code ?? 'Error');
}

export function isThrottling(err: unknown): boolean {
  return THROTTLING.has(codeOf(err)) || (err as AwsLikeError)?.$retryable?.throttling === true;
}

/** Worth another try: throttling, a 5xx from EC2, or a dropped connection. */
export function isRetryable(err: unknown): boolean {
  const status = (err as AwsLikeError)?.$metadata?.httpStatusCode ?? 0;
  return isThrottling(err) || TRANSIENT.has(codeOf(err)) || status >= 500;
}

export interface ErrorContext {
  /** The EC2 action, e.g. `RunInstances`. */
  readonly action: string;
  readonly region?: string;
  readonly imageId?: string;
  readonly instanceType?: string;
  readonly attempts: number;
}

/** One clear line for `err`, raised by `context.action`. */
export function explainAwsError(err: unknown, context: ErrorContext): Ec2LaunchError {
  if (err instanceof Ec2LaunchError) return err;
  const code = codeOf(err);
  const message = (err as AwsLikeError)?.message ?? String(err);
  const region = context.region ?? 'the region';
  const say = (text: string) => new Ec2LaunchError(`${context.action}: ${text}`, code);

  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return say(
      'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run where an instance role provides them',
    );
  }
  if (/Region is missing/i.test(message)) {
    return say('no AWS region: set AWS_REGION or pass --region (e.g. us-west-1)');
  }
  if (isThrottling(err)) {
    return say(
      `EC2 kept throttling the request (${code}) after ${context.attempts} attempts with back-off: wait a minute and run it again, or launch fewer instances at once (--concurrency)`,
    );
  }
  switch (code) {
    case 'AuthFailure':
    case 'InvalidClientTokenId':
    case 'UnrecognizedClientException':
    case 'SignatureDoesNotMatch':
      return say(
        `AWS rejected the credentials (${code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and that this machine's clock is right`,
      );
    case 'UnauthorizedOperation':
      return say(
        `the credentials may not call ec2:${context.action} (UnauthorizedOperation): attach the launcher policy from infra/aws (see README "On AWS"); \`aws sts decode-authorization-message\` decodes the details`,
      );
    case 'InvalidAMIID.NotFound':
    case 'InvalidAMIID.Malformed':
    case 'InvalidAMIID.Unavailable':
      return say(
        `AMI "${context.imageId ?? '?'}" cannot be used in ${region} (${code}): expected the id (ami-…) of an available image in this region; build one with infra/ami/build-ami.sh and pass it with --ami or AWS_AMI`,
      );
    case 'InsufficientInstanceCapacity':
      return say(
        `AWS has no capacity for ${context.instanceType ?? 'this instance type'} in this availability zone right now (${code}): try another --subnet (another zone) or --instance-type, or retry later`,
      );
    case 'InstanceLimitExceeded':
    case 'VcpuLimitExceeded':
    case 'MaxSpotInstanceCountExceeded':
      return say(
        `the account's EC2 limit in ${region} is reached (${code}): request a higher vCPU limit (EC2 console → Limits, "Running On-Demand Standard instances"), or launch fewer or smaller instances`,
      );
    case 'InvalidSubnetID.NotFound':
    case 'InvalidSubnet':
      return say(`the subnet does not exist in ${region} (${code}): pass --subnet subnet-… from this region`);
    case 'InvalidGroup.NotFound':
    case 'InvalidGroupId.Malformed':
      return say(
        `the security group does not exist in ${region} (${code}): create it from infra/aws/paxos-cluster.cfn.json and pass --security-group sg-…`,
      );
    case 'InvalidKeyPair.NotFound':
      return say(`the key pair does not exist in ${region} (${code}): create it or leave out --key-name`);
    case 'InvalidParameterValue':
      if (/iamInstanceProfile/i.test(message)) {
        return say(
          `the instance profile is not valid (${code}: ${message}): pass --instance-profile with the profile created from infra/aws/paxos-cluster.cfn.json`,
        );
      }
      return say(`${code}: ${message}`);
    case 'InvalidInstanceID.NotFound':
      return say(`an instance is gone (${code}: ${message})`);
    default:
      return say(`${code}: ${message}`);
  }
}

/** A flag, setting, file or argument the command cannot work with: one line, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
