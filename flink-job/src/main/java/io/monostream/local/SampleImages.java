package io.monostream.local;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Images the project draws itself with Java2D (nothing downloaded, nothing copyrighted): a
 * receipt, an invoice, a shop sign and a picture of shapes. Headless; DejaVu fonts or the JDK's
 * logical fonts.
 */
public final class SampleImages {
    private SampleImages() {}

    /** name → encoded image (PNG, or JPEG for the photo-like one), in a fixed order. */
    public static Map<String, byte[]> all() {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("receipt", png(receipt()));
        m.put("invoice", png(invoice()));
        m.put("sign", jpeg(sign()));
        m.put("shapes", png(shapes()));
        return m;
    }

    public static BufferedImage receipt() {
        BufferedImage img = canvas(360, 520, new Color(252, 250, 244));
        Graphics2D g = graphics(img);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.MONOSPACED, Font.BOLD, 22));
        g.drawString("CORNER CAFE", 100, 50);
        g.setFont(new Font(Font.MONOSPACED, Font.PLAIN, 16));
        String[] lines = {"12 Harbour Street", "", "Espresso          2.40", "Croissant         2.10",
                "Orange juice      3.20", "Bagel, cheese     4.50", "", "TOTAL            12.20", "CARD             12.20",
                "", "Thank you!"};
        int y = 90;
        for (String line : lines) {
            g.drawString(line, 40, y);
            y += 30;
        }
        g.dispose();
        return img;
    }

    public static BufferedImage invoice() {
        BufferedImage img = canvas(640, 440, Color.WHITE);
        Graphics2D g = graphics(img);
        g.setColor(new Color(30, 60, 120));
        g.fillRect(0, 0, 640, 60);
        g.setColor(Color.WHITE);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 28));
        g.drawString("INVOICE  No. 2024-0117", 24, 42);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 18));
        g.drawString("Bill to: Northwind Traders", 24, 100);
        g.drawString("Date: 3 March 2024", 420, 100);
        String[][] rows = {{"Item", "Qty", "Price"}, {"Paper, A4 box", "4", "39.60"}, {"Toner cartridge", "2", "118.00"},
                {"Stapler", "1", "12.50"}, {"Total", "", "170.10"}};
        int y = 150;
        for (String[] row : rows) {
            g.drawLine(24, y + 10, 616, y + 10);
            g.drawString(row[0], 30, y);
            g.drawString(row[1], 400, y);
            g.drawString(row[2], 520, y);
            y += 44;
        }
        g.dispose();
        return img;
    }

    public static BufferedImage sign() {
        BufferedImage img = canvas(600, 300, new Color(120, 170, 220));
        Graphics2D g = graphics(img);
        g.setColor(new Color(40, 120, 60));
        g.fillRoundRect(60, 60, 480, 180, 30, 30);
        g.setColor(Color.WHITE);
        g.setStroke(new BasicStroke(6));
        g.drawRoundRect(72, 72, 456, 156, 24, 24);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 44));
        g.drawString("CITY CENTRE", 140, 150);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 30));
        g.drawString("2 km  \u2192", 230, 205);
        g.dispose();
        return img;
    }

    public static BufferedImage shapes() {
        BufferedImage img = canvas(448, 448, new Color(245, 245, 245));
        Graphics2D g = graphics(img);
        g.setColor(new Color(220, 40, 40));
        g.fillOval(40, 40, 160, 160);
        g.setColor(new Color(40, 90, 220));
        g.fillRect(240, 60, 170, 120);
        g.setColor(new Color(240, 190, 20));
        g.fillPolygon(new int[] {120, 40, 200}, new int[] {250, 400, 400}, 3);
        g.setColor(new Color(30, 150, 70));
        g.setStroke(new BasicStroke(12));
        g.drawLine(250, 260, 410, 400);
        g.dispose();
        return img;
    }

    /** A distinct receipt-like page per {@code n} (benchmarks: no two requests share an image). */
    public static BufferedImage numbered(int n) {
        BufferedImage img = canvas(448, 448, new Color(250 - n % 7, 248, 240 + n % 11));
        Graphics2D g = graphics(img);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.MONOSPACED, Font.BOLD, 26));
        g.drawString("ORDER #" + (1000 + n), 40, 60);
        g.setFont(new Font(Font.MONOSPACED, Font.PLAIN, 18));
        for (int line = 0; line < 8; line++) {
            g.drawString(String.format("item %02d %9.2f", line + 1, ((n * 31 + line * 17) % 997) / 10.0), 40, 110 + line * 36);
        }
        g.setColor(new Color((n * 53) % 256, (n * 97) % 256, 160));
        g.fillOval(300 + n % 40, 300, 90, 90);
        g.dispose();
        return img;
    }

    private static BufferedImage canvas(int w, int h, Color background) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(background);
        g.fillRect(0, 0, w, h);
        g.dispose();
        return img;
    }

    private static Graphics2D graphics(BufferedImage img) {
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        return g;
    }

    public static byte[] png(BufferedImage img) {
        return encode(img, "png");
    }

    public static byte[] jpeg(BufferedImage img) {
        return encode(img, "jpeg");
    }

    private static byte[] encode(BufferedImage img, String format) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            if (!ImageIO.write(img, format, out)) {
                throw new IllegalStateException("no ImageIO writer for " + format);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }
}
