import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import { loadProviderSecrets } from '../../../lib/aws/secrets.js';

const sm = mockClient(SecretsManagerClient);
afterEach(() => {
  sm.reset();
});

describe('provider secrets from Secrets Manager (Powertools parameters)', () => {
  it('keeps provider variables and the git token, and drops anything else', async () => {
    // Arrange
    process.env.AWS_REGION = 'eu-west-1';
    sm.on(GetSecretValueCommand, { SecretId: 'arn:secret:keys-1' }).resolves({
      SecretString: JSON.stringify({
        ANTHROPIC_API_KEY: 'sk-ant',
        OPENAI_API_KEY: 'sk-oai',
        GIT_TOKEN: 'ghp',
        PATH: '/evil',
        NODE_OPTIONS: '--require /evil.js',
        GEMINI_API_KEY: 42,
      }),
    });
    // Act
    const env = await loadProviderSecrets('arn:secret:keys-1');
    // Assert
    expect(env).toEqual({ ANTHROPIC_API_KEY: 'sk-ant', OPENAI_API_KEY: 'sk-oai', GIT_TOKEN: 'ghp' });
  });

  it('reads the secret once within its cache age', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: '{"ANTHROPIC_API_KEY":"a"}' });
    await loadProviderSecrets('arn:secret:keys-2');
    await loadProviderSecrets('arn:secret:keys-2');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('refuses a secret that is not a JSON object', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: '["ANTHROPIC_API_KEY"]' });
    await expect(loadProviderSecrets('arn:secret:keys-3')).rejects.toThrow(/JSON object/);
  });
});
