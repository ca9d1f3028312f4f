#!/usr/bin/env node
import { buildApp } from '../lib/infra/app.js';

/** The CDK app (see lib/infra/app.ts for its context settings). The CLI synthesizes it on exit. */
buildApp();
