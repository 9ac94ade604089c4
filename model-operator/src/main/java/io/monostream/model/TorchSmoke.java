package io.monostream.model;

import ai.djl.ndarray.NDManager;

public final class TorchSmoke {
    public static void main(String[] args) {
        try (NDManager m = NDManager.newBaseManager()) {
            System.out.println(m.create(new float[] {1, 2, 3}).matMul(m.create(new float[] {1, 2, 3})).getFloat());
        }
    }
}
