'use strict';
// Amazon's official Node.js SDK against the simulator's API v2 (run by tests/integration/test_pay_v2_node_sdk.py).
// Usage: node check_simulator.js CONFIG.json — prints one JSON report of every step on stdout; the Python
// test asserts on it. Nothing here decides what is right: it only records what the SDK got back.
const fs = require('fs');
const { WebStoreClient } = require('@amazonpay/amazon-pay-api-sdk-nodejs');

function client(config, key, algorithm) {
    const options = {
        publicKeyId: key.id,
        privateKey: fs.readFileSync(key.privateKeyFile),
        region: 'us',
        sandbox: true,
        overrideServiceUrl: config.host, // host:port; the SDK prepends https://
    };
    if (algorithm) options.algorithm = algorithm;
    return new WebStoreClient(options);
}

async function step(name, call) {
    try {
        const response = await call();
        return { name, status: response.status, data: response.data };
    } catch (error) {
        const response = error.response || error; // axios error, or the response the SDK rejects with
        if (response && response.status) return { name, status: response.status, data: response.data };
        return { name, status: null, error: String(error && error.message || error) };
    }
}

async function main() {
    const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const report = [];
    for (const run of config.runs) {
        const tag = run.tag;
        const pay = client(config, run.key, run.algorithm);
        const body = { chargeId: run.chargeId, refundAmount: { amount: '10.00', currencyCode: 'USD' } };
        const key = { 'x-amz-pay-idempotency-key': `node${tag}1` };
        const created = await step(`${tag}:create`, () => pay.createRefund(body, key));
        report.push(created);
        report.push(await step(`${tag}:replay`, () => pay.createRefund(body, key)));
        const refundId = created.data && created.data.refundId;
        report.push(await step(`${tag}:get-refund`, () => pay.getRefund(refundId)));
        report.push(await step(`${tag}:get-charge`, () => pay.getCharge(run.chargeId)));
        const changed = { chargeId: run.chargeId, refundAmount: { amount: '11.00', currencyCode: 'USD' } };
        report.push(await step(`${tag}:changed-body`, () => pay.createRefund(changed, key)));
        const over = { chargeId: run.overChargeId, refundAmount: { amount: '115.01', currencyCode: 'USD' } };
        report.push(await step(`${tag}:over-refund`, () => pay.createRefund(over, { 'x-amz-pay-idempotency-key': `node${tag}2` })));
        const cap = { chargeId: run.overChargeId, refundAmount: { amount: '115.00', currencyCode: 'USD' } };
        report.push(await step(`${tag}:up-to-the-cap`, () => pay.createRefund(cap, { 'x-amz-pay-idempotency-key': `node${tag}3` })));
        const forger = client(config, { id: run.key.id, privateKeyFile: config.wrongPrivateKeyFile }, run.algorithm);
        report.push(await step(`${tag}:wrong-key`, () => forger.getCharge(run.chargeId)));
    }
    process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((error) => {
    process.stderr.write(`check_simulator.js failed: ${error && error.stack || error}\n`);
    process.exit(2);
});
