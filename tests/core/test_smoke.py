DDL = {
    "default": """
CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE, price DECIMAL(10,2));
INSERT INTO items (id, name, price) VALUES (1, 'a', 1.50), (2, 'b', 2.25)
""",
}


def test_list_and_create(client, database):
    r = client.get("/items")
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"id": 1, "name": "a", "price": "1.50"}, {"id": 2, "name": "b", "price": "2.25"}]
    r = client.post("/items", json={"id": 3, "name": "c", "price": "9.99"})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": 3, "name": "c", "price": "9.99"}
    r = client.post("/items", json={"id": 4, "name": "c"})
    assert r.status_code == 409, r.text
    r = client.put("/items/3", json={"price": "1.00"})
    assert r.status_code == 200, r.text
    assert r.json()["price"] == "1.00"
    r = client.delete("/items/3")
    assert r.status_code == 200 and r.json()["id"] == 3
    assert client.get("/items/3").status_code == 404
