/**
 * What the MongoDB store takes from its URL and how it names collections (no server needed: the
 * driver parses the URL itself).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { driverDefaults, mongoCollectionName, redactUrl } from '../src/store/mongodb/connection.js';
import { openStore } from '../src/store/open-store.js';

function clientFor(url: string): MongoClient {
  return new MongoClient(url, driverDefaults(url));
}

describe('MongoDB URL', () => {
  it('pool size and timeouts come from the URL, whatever their case', () => {
    const options = clientFor('mongodb://127.0.0.1:1/app?maxPoolSize=7&serverselectiontimeoutms=1234&connectTimeoutMS=4321&heartbeatFrequencyMS=600').options;
    assert.equal(options.maxPoolSize, 7);
    assert.equal(options.serverSelectionTimeoutMS, 1234);
    assert.equal(options.connectTimeoutMS, 4321);
    assert.equal(options.heartbeatFrequencyMS, 600);
  });

  it('without them: the driver pool default, and seconds (not 30 s) to notice an unreachable server', () => {
    const options = clientFor('mongodb://127.0.0.1:1/app').options;
    assert.equal(options.maxPoolSize, 100);
    assert.equal(options.serverSelectionTimeoutMS, 5000);
    assert.equal(options.connectTimeoutMS, 5000);
    assert.equal(options.heartbeatFrequencyMS, 1000);
  });

  it('never shows credentials', async () => {
    assert.equal(redactUrl('mongodb://ann:s3cret@db1:27017,db2/app?replicaSet=rs0'), 'mongodb://db1:27017,db2/app?replicaSet=rs0');
    assert.equal(redactUrl('mongodb+srv://ann:s3cret@cluster.example.net/app'), 'mongodb+srv://cluster.example.net/app');
    const store = await openStore('mongodb://ann:s3cret@127.0.0.1:1/app?serverSelectionTimeoutMS=100', '/tmp');
    try {
      assert.doesNotMatch(store.description, /s3cret|ann/);
    } finally {
      void store.close();
    }
  });

  it('needs a database name', async () => {
    await assert.rejects(openStore('mongodb://127.0.0.1:27017', '/tmp'), /name the database/);
    await assert.rejects(openStore('mongodb://127.0.0.1:27017/?w=1', '/tmp'), /name the database/);
  });
});

describe('MongoDB collection names', () => {
  it('keep plain and internal names, turn folders into dotted namespaces, escape the rest', () => {
    assert.equal(mongoCollectionName('todos'), 'todos');
    assert.equal(mongoCollectionName('_sessions'), '_sessions');
    assert.equal(mongoCollectionName('shop/orders'), 'shop.orders');
    assert.equal(mongoCollectionName('a.b'), 'a%2Eb', 'a dot in a name cannot collide with a folder');
    assert.equal(mongoCollectionName('x$y'), 'x%24y');
    assert.equal(mongoCollectionName('system/users'), '%73ystem.users', "MongoDB's reserved system.* stays out of reach");
  });
});
