import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { holderId, isGoneFromThisNode, nodeId, parseHolder } from './lease-holder.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-node-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('nodeId', () => {
  it('is the same for every process on one data directory, and differs for another', () => {
    const dir = tempDir();
    const node = nodeId(dir);
    expect(node.startsWith(`${hostname().replace(/[^A-Za-z0-9.-]/g, '-')}~`)).toBe(true);
    expect(nodeId(dir)).toBe(node);
    expect(readFileSync(path.join(dir, 'node-id'), 'utf8')).toBe(node.split('~')[1]);
    expect(statSync(path.join(dir, 'node-id')).mode & 0o777).toBe(0o600);
    expect(nodeId(tempDir())).not.toBe(node);
  });

  it('stands in an id of this process alone when the data directory cannot hold one', () => {
    const file = path.join(tempDir(), 'not-a-directory');
    writeFileSync(file, '');
    const node = nodeId(path.join(file, 'data'));
    expect(node).toMatch(/~transient-[0-9a-f]+$/);
  });
});

describe('lease holders', () => {
  const node = 'host.example~0123456789abcdef';

  it('name the role, node, pid and incarnation, uniquely within a process', () => {
    const first = holderId('worker', node);
    const second = holderId('worker', node);
    expect(first).not.toBe(second);
    expect(parseHolder(first)).toMatchObject({ role: 'worker', node, pid: process.pid });
    // Names from before node ids (`worker:{pid}:{random}`) and tests' own are not holders of a node.
    expect(parseHolder('worker:1234:abcd1234')).toBeUndefined();
    expect(parseHolder('dead-worker')).toBeUndefined();
  });

  it('are gone when their process is: never one of another node, of this process, or of a live process', async () => {
    const mine = parseHolder(holderId('worker', node));
    if (!mine) throw new Error('unparsable holder');
    expect(isGoneFromThisNode(mine, node)).toBe(false);
    // This pid, another process: what a container's Node (pid 1 each time) held before a restart.
    expect(isGoneFromThisNode({ ...mine, incarnation: '000000000000.1' }, node)).toBe(true);

    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await once(child, 'spawn');
    const live = { ...mine, pid: child.pid as number, incarnation: 'aaaaaaaaaaaa.1' };
    expect(isGoneFromThisNode(live, node)).toBe(false);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(isGoneFromThisNode(live, node)).toBe(true);
    // Another node's holder is never judged by the pids of this machine.
    expect(isGoneFromThisNode(live, 'other~0000000000000000')).toBe(false);
  });
});
